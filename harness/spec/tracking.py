"""The spec's `tracking:` block: where a sweep is sent besides the store (MLflow, Weights & Biases; docs/tracking.md)."""

from __future__ import annotations

import re
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from harness.errors import HarnessInputError, did_you_mean

SECRET_KEYS = ("api_key", "key", "token", "password", "secret")
SECRET_ENV = {"wandb": "WANDB_API_KEY (or run `wandb login`)",
              "mlflow": "MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _no_secrets(raw: object, tracker: str) -> object:
    """A credential written into the block is refused: the spec is stored with every run in the results file."""
    if isinstance(raw, dict):
        found = [str(k) for k in raw if str(k).lower() in SECRET_KEYS]
        if found:
            raise ValueError(f"{', '.join(found)}: credentials never go in a spec (it is stored with every run); "
                             f"set {SECRET_ENV[tracker]} in the environment instead")
    return raw


class MlflowSpec(_Strict):
    """MLflow: the tracking server or local store (None: MLFLOW_TRACKING_URI, else MLflow's default) and the
    experiment (None: MLFLOW_EXPERIMENT_NAME, else the spec's name)."""

    tracking_uri: str | None = None  # e.g. sqlite:///mlflow.db, http://mlflow.internal:5000, databricks
    experiment: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, raw: object) -> object:
        return _no_secrets(raw, "mlflow")

    @field_validator("tracking_uri")
    @classmethod
    def _no_userinfo(cls, v: str | None) -> str | None:
        if v is not None and re.search(r"://[^/@\s]+@", v):
            raise ValueError("holds credentials (user:password@): the spec is stored with every run; set "
                             f"{SECRET_ENV['mlflow']} in the environment instead")
        return v


class WandbSpec(_Strict):
    """Weights & Biases: project (None: WANDB_PROJECT, else the spec's name), entity (None: your default), mode and
    the folder runs are written to (None: WANDB_DIR, else the working directory). The API key comes from
    WANDB_API_KEY (or `wandb login`) only."""

    project: str | None = None
    entity: str | None = None
    mode: Literal["online", "offline", "disabled"] = "online"
    dir: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, raw: object) -> object:
        return _no_secrets(raw, "wandb")

    @field_validator("project", "entity")
    @classmethod
    def _plain(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or "/" in v):
            raise ValueError(f"{v!r}: a W&B project or entity is a plain name without '/'")
        return v


class TrackingSpec(_Strict):
    """`tracking:`: one entry per tracker a sweep is sent to when it ends (and by `harness export`)."""

    mlflow: MlflowSpec | None = None
    wandb: WandbSpec | None = None

    @field_validator("mlflow", "wandb", mode="before")
    @classmethod
    def _empty_is_defaults(cls, v: object) -> object:
        return {} if v is None else v  # `mlflow:` with nothing under it: every default

    def trackers(self) -> list[str]:
        """The trackers the block names, in a fixed order."""
        return [name for name in ("mlflow", "wandb") if getattr(self, name) is not None]


def parse_tracking(block: object, where: str) -> TrackingSpec:
    """Validate a `tracking:` mapping; every problem named with its key, unknown keys with a "did you mean"."""
    if block is None:
        return TrackingSpec()
    if not isinstance(block, dict):
        raise HarnessInputError(f"{where}: key 'tracking' must be a mapping, e.g. tracking: {{mlflow: {{tracking_uri: "
                                "sqlite:///mlflow.db}}}}")
    problems: list[str] = []
    try:
        return TrackingSpec.model_validate(block)
    except ValidationError as exc:
        models: dict[str, type[BaseModel]] = {"mlflow": MlflowSpec, "wandb": WandbSpec}
        for err in exc.errors():
            loc = [str(p) for p in err["loc"]]
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                model = models.get(loc[0]) if len(loc) > 1 else TrackingSpec
                allowed = list(model.model_fields) if model else []
                msg = f"unknown key.{did_you_mean(loc[-1], allowed)} Allowed here: {', '.join(allowed)}"
            problems.append(f"{where}: key 'tracking.{'.'.join(loc)}': {msg}")
        raise HarnessInputError(problems, title="invalid tracking block") from None


def tracking_from_text(spec_text: str | None, where: str) -> TrackingSpec:
    """The `tracking:` block of a stored spec's YAML text (none: an empty block)."""
    if not spec_text:
        return TrackingSpec()
    try:
        raw = yaml.safe_load(spec_text)
    except yaml.YAMLError as exc:
        raise HarnessInputError(f"{where}: the stored spec is not valid YAML ({exc}); pass --spec FILE") from None
    return parse_tracking(raw.get("tracking") if isinstance(raw, dict) else None, where)
