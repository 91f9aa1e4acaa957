"""An MLflow artifact repository over any fsspec filesystem (object storage as a URL).

Registered for ``memory://`` through the ``mlflow.artifact_repository`` entry point
(``pyproject.toml``), so ``MUSICML_ARTIFACTS=memory://mlartifacts`` runs the same code path an
fsspec object store would; ``s3://``, ``gs://``, ``wasbs://``, ``hdfs://`` already have MLflow's
own repositories. Another fsspec protocol is one more line under that entry point.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

from fsspec.core import url_to_fs
from mlflow.entities import FileInfo
from mlflow.store.artifact.artifact_repo import ArtifactRepository


class FsspecArtifactRepository(ArtifactRepository):
    """MLflow artifacts under an fsspec URL (``memory://bucket/mlartifacts/<exp>/<run>/artifacts``)."""

    def __init__(self, artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None):
        super().__init__(artifact_uri, tracking_uri, registry_uri)
        self.fs, self.root = url_to_fs(artifact_uri)
        self.root = self.root.rstrip("/")

    def _join(self, artifact_path: str | None) -> str:
        if not artifact_path:
            return self.root
        parts = [p for p in artifact_path.replace("\\", "/").split("/") if p not in ("", ".")]
        if ".." in parts:
            raise ValueError(f"artifact path {artifact_path!r} escapes the artifact root {self.artifact_uri}")
        return posixpath.join(self.root, *parts)

    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        dest = self._join(artifact_path)
        self.fs.makedirs(dest, exist_ok=True)
        self.fs.put_file(local_file, posixpath.join(dest, os.path.basename(local_file)))

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        base = Path(local_dir)
        for f in sorted(p for p in base.rglob("*") if p.is_file()):
            rel = f.parent.relative_to(base).as_posix()
            sub = posixpath.join(artifact_path or "", rel) if rel != "." else artifact_path
            self.log_artifact(str(f), sub)

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        where = self._join(path)
        if not self.fs.isdir(where):
            return []
        infos = []
        for entry in sorted(self.fs.ls(where, detail=True), key=lambda e: e["name"]):
            rel = posixpath.relpath(entry["name"].rstrip("/"), self.root)
            is_dir = entry["type"] == "directory"
            infos.append(FileInfo(rel, is_dir, None if is_dir else int(entry.get("size") or 0)))
        return infos

    def _download_file(self, remote_file_path: str, local_path: str) -> None:
        self.fs.get_file(self._join(remote_file_path), local_path)

    def delete_artifacts(self, artifact_path: str | None = None) -> None:
        where = self._join(artifact_path)
        if self.fs.exists(where):
            self.fs.rm(where, recursive=True)
