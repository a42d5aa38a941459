"""cmmerge: adapt multilingual language models to code-mixed text by model merging."""

import os as _os

__version__ = "0.1.0"

# Offline first. huggingface_hub and transformers read these once, when they are first imported, so they are
# set here: every entry point (the ``cmmerge`` command, ``python -m cmmerge``, the stage scripts) imports this
# package before anything of the Hugging Face stack, and a missing model then fails at once instead of after
# a minute of retries to the hub. A user who wants downloads sets them to 0 beforehand.
for _name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    _os.environ.setdefault(_name, "1")
del _name
