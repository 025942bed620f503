"""Frontend settings from FRONTEND_* environment variables (docker-compose.yml sets them for the container).

FRONTEND_ENDPOINTS is a JSON list: [{"name": "Qwen3-VL-8B", "base_url": "http://vllm-8b:8000/v1"}, ...].
Without it the page looks for the bare-metal servers of `python -m serve up` on 127.0.0.1. Behind one URL
that serves several models (a router, a gateway), each entry names its `model`.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from frontend.conversation import DEFAULT_IMAGE_TOKEN_BUDGET, DEFAULT_MAX_TOKENS
from frontend.endpoint import Endpoint, blank_to_none

__all__ = ["Endpoint", "FrontendSettings", "SettingsInvalid", "load_settings"]

ENV_PREFIX = "FRONTEND_"


def _bare_metal_endpoints() -> list[Endpoint]:
    # The profiles' ports: 8000 for the 8b family, 8001 for 4b.
    return [
        Endpoint(
            name="Qwen3-VL-8B", base_url="http://127.0.0.1:8000/v1", start_command="python -m serve up 8b"
        ),
        Endpoint(
            name="Qwen3-VL-4B", base_url="http://127.0.0.1:8001/v1", start_command="python -m serve up 4b"
        ),
    ]


class FrontendSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX)

    endpoints: list[Endpoint] = Field(
        default_factory=_bare_metal_endpoints,
        min_length=1,
        description="Model servers shown on the page (FRONTEND_ENDPOINTS, JSON list).",
    )
    api_key: SecretStr | None = Field(
        default=None,
        description="Bearer key for every endpoint without its own (FRONTEND_API_KEY, else VLLM_API_KEY); "
        "empty = none.",
    )
    vllm_api_key: SecretStr | None = Field(
        default=None,
        validation_alias="VLLM_API_KEY",
        exclude=True,
        description="VLLM_API_KEY, the servers' own key: used when FRONTEND_API_KEY is empty (compose gives "
        "the page secrets.env, where the key lives).",
    )

    data_dir: Path = Field(
        default_factory=lambda: Path.home() / ".local" / "share" / "qwen3-vl-chat",
        description="Folder of the chat history database (FRONTEND_DATA_DIR; the compose volume is /data).",
    )
    request_timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="Longest wait for the next streamed token before giving up (FRONTEND_REQUEST_TIMEOUT_S).",
    )
    max_tokens: int = Field(
        default=DEFAULT_MAX_TOKENS, ge=1, description="Default answer length in tokens (FRONTEND_MAX_TOKENS)."
    )
    image_token_budget: int = Field(
        default=DEFAULT_IMAGE_TOKEN_BUDGET,
        ge=64,
        le=16384,
        description="Default visual tokens per image (FRONTEND_IMAGE_TOKEN_BUDGET); Qwen suggests 256..1280.",
    )
    max_upload_mb: int = Field(
        default=20, ge=1, le=200, description="Largest image file accepted, in MB (FRONTEND_MAX_UPLOAD_MB)."
    )
    max_video_mb: int = Field(
        default=200,
        ge=1,
        le=2000,
        description="Largest video file accepted, in MB (FRONTEND_MAX_VIDEO_MB); the page reduces it to a few "
        "MB before sending.",
    )
    password: SecretStr | None = Field(
        default=None,
        description="Shared password that opens the page, for a small team (FRONTEND_PASSWORD); empty = none. "
        "Everyone who has it shares one set of chats; with OIDC login (st.login) each user has their own.",
    )
    bind_address: str | None = Field(
        default=None,
        description="Address people reach the page on (FRONTEND_BIND_ADDRESS; compose passes BIND_ADDRESS): "
        "beyond loopback the page requires a login. Default: Streamlit's server.address.",
    )
    allow_no_login: bool = Field(
        default=False,
        description="Serve the page beyond loopback without a login (FRONTEND_ALLOW_NO_LOGIN=true), e.g. "
        "behind a reverse proxy that authenticates; anyone who reaches it can use the models and read every chat.",
    )

    _blank_key = field_validator("api_key", "vllm_api_key", "password", "bind_address", mode="before")(
        blank_to_none
    )

    @model_validator(mode="after")
    def _servers_key_by_default(self) -> FrontendSettings:
        if self.api_key is None:
            self.api_key = self.vllm_api_key
        return self

    @property
    def database_path(self) -> Path:
        return self.data_dir / "chats.sqlite3"

    def key_for(self, endpoint: Endpoint) -> SecretStr | None:
        return endpoint.api_key or self.api_key


class SettingsInvalid(ValueError):
    """FRONTEND_* holds something unusable; the message names the variable and what is expected."""


def load_settings() -> FrontendSettings:
    """FrontendSettings from the environment, with errors phrased in terms of the variables to fix."""
    try:
        return FrontendSettings()
    except SettingsError as error:
        # The value is not JSON; pydantic-settings keeps the parser's error as the cause.
        field = re.search(r'field "(\w+)"', str(error))
        variable = ENV_PREFIX + (field.group(1).upper() if field else "*")
        raise SettingsInvalid(
            f"{variable} is not valid JSON ({error.__cause__ or error}); expected e.g. "
            '[{"name": "Qwen3-VL-8B", "base_url": "http://127.0.0.1:8000/v1"}]'
        ) from error
    except ValidationError as error:
        raise SettingsInvalid(
            "; ".join(_describe(item["loc"], item["msg"]) for item in error.errors())
        ) from error


def _describe(loc: tuple[int | str, ...], message: str) -> str:
    """('endpoints', 0, 'base_url') -> 'FRONTEND_ENDPOINTS[0].base_url: message'."""
    field, *rest = loc
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in rest)
    return f"{ENV_PREFIX}{str(field).upper()}{path}: {message}"
