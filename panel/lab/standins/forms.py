"""Request body and query parsing the vendors use: Stripe's bracket forms, Mailgun's multipart."""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import HTTP
from typing import Any


def parse_brackets(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Turn Rack/Stripe style keys into nested values.

    ``metadata[group_id]=1`` -> ``{"metadata": {"group_id": "1"}}``; ``expand[]=a&expand[]=b`` ->
    ``{"expand": ["a", "b"]}``; ``items[0][price]=p`` -> ``{"items": [{"price": "p"}]}``.
    """
    root: dict[str, Any] = {}
    for key, value in pairs:
        head, _, rest = key.partition("[")
        parts = [head] + ([p.rstrip("]") for p in ("[" + rest).split("[")[1:]] if rest else [])
        node: Any = root
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            following = parts[index + 1] if not last else None
            if part == "":  # "[]": append to a list
                if last:
                    node.append(value)
                else:
                    node.append({})
                    node = node[-1]
                continue
            if last:
                node[part] = value
            else:
                default: Any = [] if following == "" else {}
                node = node.setdefault(part, default)
    return _lists_from_digit_keys(root)


def _lists_from_digit_keys(value: Any) -> Any:
    if isinstance(value, dict):
        converted = {k: _lists_from_digit_keys(v) for k, v in value.items()}
        if converted and all(k.isdigit() for k in converted):
            return [converted[k] for k in sorted(converted, key=int)]
        return converted
    if isinstance(value, list):
        return [_lists_from_digit_keys(v) for v in value]
    return value


def parse_multipart(content_type: str, body: bytes) -> list[tuple[str, str | bytes]]:
    """Fields of a multipart/form-data body, in order. Files come back as bytes."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    fields: list[tuple[str, str | bytes]] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        raw = payload if isinstance(payload, bytes) else b""
        if part.get_filename():
            fields.append((name, raw))
        else:
            fields.append((name, raw.decode(part.get_content_charset() or "utf-8", errors="replace")))
    return fields
