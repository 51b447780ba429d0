"""Publishing a model folder to the Hugging Face Hub (the only place this project needs network)."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import HfApi


def push_folder(folder: str | Path, repo_id: str, private: bool | None = None, token: str | None = None) -> str:
    """Create the model repo if needed and upload the model, image processor, card and plots.

    Trainer checkpoints (`checkpoint-*/`) stay local: they hold optimizer state, not the model users load.
    """
    api = HfApi(token=token)
    repo_url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    api.upload_folder(repo_id=repo_url.repo_id, folder_path=str(folder), repo_type="model",
                      ignore_patterns=["checkpoint-*", "checkpoint-*/**", "runs/**", "training_args.bin"],
                      commit_message="Upload brain-tumour MRI classifier")
    return str(repo_url)
