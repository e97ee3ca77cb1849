"""The template's routes matched as API Gateway REST matches them: a literal segment beats `{param}`
beats `{proxy+}`, an exact method beats ANY, an encoded slash stays inside its segment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from lambdavision.cfn import ApiRoute, TemplateError

# Segment kinds, in API Gateway's order of precedence: a literal beats {param} beats {proxy+}.
_LITERAL, _PARAM, _GREEDY = 0, 1, 2


@dataclass(frozen=True)
class _Segment:
    kind: int
    text: str  # the literal text, or the parameter's name


@dataclass(frozen=True)
class CompiledRoute:
    route: ApiRoute
    segments: tuple[_Segment, ...]

    def match(self, parts: Sequence[str]) -> dict[str, str] | None:
        """Path parameters when `parts` (decoded path segments) fit this route, else None."""
        params: dict[str, str] = {}
        for index, segment in enumerate(self.segments):
            if segment.kind == _GREEDY:
                if index >= len(parts):  # {proxy+} needs at least one segment
                    return None
                params[segment.text] = "/".join(parts[index:])
                return params
            if index >= len(parts):
                return None
            if segment.kind == _LITERAL:
                if parts[index] != segment.text:
                    return None
            else:
                params[segment.text] = parts[index]
        return params if len(parts) == len(self.segments) else None

    def precedence(self) -> tuple[tuple[int, ...], int]:
        """Sort key: most specific first, segment by segment; an exact method before ANY."""
        kinds = tuple(segment.kind for segment in self.segments)
        return kinds, 1 if self.route.method.upper() == "ANY" else 0


def _split_path(path: str) -> list[str]:
    return [part for part in path.split("/") if part]


def compile_route(route: ApiRoute) -> CompiledRoute:
    """Parse a resource path like `/items/{id}/{proxy+}`; a malformed one is a template error."""
    segments: list[_Segment] = []
    parts = _split_path(route.path)
    for index, part in enumerate(parts):
        if part.startswith("{") and part.endswith("}"):
            name = part[1:-1]
            if name.endswith("+"):
                if index != len(parts) - 1:
                    raise TemplateError(f"route {route.path}: a greedy {{{name}}} must be the last segment")
                segments.append(_Segment(_GREEDY, name[:-1]))
            else:
                segments.append(_Segment(_PARAM, name))
        else:
            segments.append(_Segment(_LITERAL, part))
    return CompiledRoute(route, tuple(segments))


class RouteTable:
    """The template's routes, matched like API Gateway REST."""

    def __init__(self, routes: Sequence[ApiRoute]) -> None:
        compiled = [compile_route(route) for route in routes]
        self._routes = sorted(compiled, key=CompiledRoute.precedence)

    def match(self, method: str, path: str) -> tuple[ApiRoute, dict[str, str]] | None:
        """The best route for a method and a percent-encoded path, with its (decoded) path parameters."""
        # Split before decoding: an encoded slash (%2F) stays inside its segment.
        parts = [unquote(part) for part in _split_path(path)]
        method = method.upper()
        # Sorted most specific first, so the first route that fits both method and path wins.
        for candidate in self._routes:
            if candidate.route.method.upper() not in (method, "ANY"):
                continue
            params = candidate.match(parts)
            if params is not None:
                return candidate.route, params
        return None


__all__ = ["CompiledRoute", "RouteTable", "compile_route"]
