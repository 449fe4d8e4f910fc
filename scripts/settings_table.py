"""Print the README's settings table from the settings model itself, so the two cannot drift apart."""

from __future__ import annotations

from pydantic_core import PydanticUndefined

from rag_gateway.config import Settings


def default_of(name: str) -> str:
    field = Settings.model_fields[name]
    if field.default_factory is not None:
        return "(computed)"
    value = field.default
    if value is PydanticUndefined or value is None or value == "":
        return "(unset)"
    if hasattr(value, "get_secret_value"):
        return "(unset)" if not value.get_secret_value() else "(secret)"
    return f"`{value}`"


def main() -> None:
    print("| setting | default | meaning |")
    print("| --- | --- | --- |")
    for name, field in Settings.model_fields.items():
        meaning = (field.description or "").replace("|", "\\|")
        print(f"| `{name.upper()}` | {default_of(name)} | {meaning} |")


if __name__ == "__main__":
    main()
