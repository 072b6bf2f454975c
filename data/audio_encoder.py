"""Speed switch: run Qwen2-Audio's audio encoder on the valid frames only, with identical outputs.

The Whisper-style encoder always runs on the full window (3000 mel frames = 30 s for the real model), although a
10 s clip has 1000 valid frames and the rest is padding. Padded positions are masked as attention keys, so the
features at valid positions depend only on the valid frames and the first two padding frames (through the two
convolutions, kernel 3). Running the convolutions on ``max valid frames + 2`` (rounded up to a multiple of 4), the
layers on that shorter sequence with the same key mask, and returning the shorter output is therefore exact: the
model's merge step keeps only the first ``audio_output_lengths`` features of each clip. Measured (notes section 8):
relative error 0 in bf16, 3x faster on 10 s clips. ``tests/test_audio_encoder.py`` checks equality on CPU.

    from data.audio_encoder import use_valid_frame_encoder
    use_valid_frame_encoder(model)            # patches this model instance (idempotent); returns the model
    use_valid_frame_encoder(model, False)     # back to the stock encoder

Works for a plain model and inside PEFT or TRL wrappers, since it patches the instance's own modules.
"""

from __future__ import annotations

import types
from typing import Any

import torch


def _base(model: Any) -> Any:
    """The ``Qwen2AudioModel`` inside a ForConditionalGeneration, PEFT or otherwise wrapped model."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    for _ in range(4):  # ForConditionalGeneration -> .model, through any thin wrappers
        if hasattr(base, "audio_tower"):
            return base
        base = base.model
    raise TypeError(f"no Qwen2-Audio audio_tower found in {type(model).__name__}")


def _encoder_forward(self: Any, input_features: torch.Tensor, attention_mask: Any = None, **kwargs: Any) -> Any:
    lengths = getattr(self, "_valid_mel_lengths", None)
    full = self.config.max_source_positions * self.conv1.stride[0] * self.conv2.stride[0]
    if lengths is None or input_features.shape[-1] != full:
        return self._stock_forward(input_features, attention_mask=attention_mask, **kwargs)
    # Valid frames + the two padding frames the convolutions read, rounded to a multiple of 4 (conv and pool strides).
    keep = min(full, (int(lengths.max()) + 2 + 3) // 4 * 4)
    if keep >= full:
        return self._stock_forward(input_features, attention_mask=attention_mask, **kwargs)
    from transformers.modeling_outputs import BaseModelOutput

    x = input_features[..., :keep].to(dtype=self.conv1.weight.dtype, device=self.conv1.weight.device)
    x = torch.nn.functional.gelu(self.conv1(x))
    x = torch.nn.functional.gelu(self.conv2(x))
    hidden = x.permute(0, 2, 1)
    positions = hidden.shape[1]
    hidden = hidden + self.embed_positions.weight[:positions]
    hidden = torch.nn.functional.dropout(hidden, p=self.dropout, training=self.training)
    if attention_mask is not None:
        attention_mask = attention_mask[..., :positions, :positions]
    for layer in self.layers:
        if self.training and self.layerdrop > 0.0 and torch.rand([]) < self.layerdrop:
            continue
        hidden = layer(hidden, attention_mask, **kwargs)
    hidden = self.avg_pooler(hidden.permute(0, 2, 1)).permute(0, 2, 1)
    return BaseModelOutput(last_hidden_state=self.layer_norm(hidden))


def _model_forward(self: Any, *args: Any, feature_attention_mask: Any = None, **kwargs: Any) -> Any:
    encoder = self.audio_tower
    encoder._valid_mel_lengths = None if feature_attention_mask is None else feature_attention_mask.sum(-1)
    try:
        return self._stock_forward(*args, feature_attention_mask=feature_attention_mask, **kwargs)
    finally:
        encoder._valid_mel_lengths = None


def use_valid_frame_encoder(model: Any, enabled: bool = True) -> Any:
    """Switch the valid-frames-only audio encoder on (or off) for this model instance."""
    base = _base(model)
    encoder = base.audio_tower
    for module, forward in ((encoder, _encoder_forward), (base, _model_forward)):
        if enabled and "_stock_forward" not in module.__dict__:
            module._stock_forward = module.forward
            module.forward = types.MethodType(forward, module)
        elif not enabled and "_stock_forward" in module.__dict__:
            module.forward = module._stock_forward
            del module._stock_forward
    return model
