from __future__ import annotations

from dataclasses import dataclass

from leadx.config import CommonSettings, env_float, env_int, env_str


@dataclass(frozen=True)
class IntakeSettings:
    common: CommonSettings
    port: int
    # How long a seller's POST waits for the pipeline's verdict before getting 202 + status URL.
    verdict_timeout_s: float
    max_body_bytes: int
    public_url: str  # base of the status URLs handed to sellers

    @classmethod
    def from_env(cls) -> IntakeSettings:
        port = env_int("INTAKE_PORT", 8080)
        return cls(
            common=CommonSettings.from_env("intake"),
            port=port,
            verdict_timeout_s=env_float("INTAKE_VERDICT_TIMEOUT_SECONDS", 2.0),
            max_body_bytes=env_int("INTAKE_MAX_BODY_BYTES", 65_536),
            public_url=env_str("INTAKE_PUBLIC_URL", f"http://127.0.0.1:{port}").rstrip("/"),
        )
