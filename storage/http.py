"""HTTP delivery of snapshot images with Range support, shared by the agent API and the
customer pages."""

import re

from django.http import HttpResponse, StreamingHttpResponse

from .services.restore import SnapshotImage

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """(start, end_exclusive) for a single satisfiable range; None for no/ignored range;
    "unsatisfiable" for a range outside the image."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match:
        return None  # multiple or malformed ranges: serve the whole image (RFC 9110 allows)
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":  # suffix range: the last N bytes
        length = int(last)
        if length == 0:
            return "unsatisfiable"
        return max(0, size - length), size
    start = int(first)
    end = size if last == "" else min(int(last) + 1, size)
    if start >= size or end <= start:
        return "unsatisfiable"
    return start, end


def image_response(request, snapshot, filename: str) -> HttpResponse:
    image = SnapshotImage.open(snapshot)
    size = image.size
    wanted = parse_range(request.headers.get("Range"), size)
    if wanted == "unsatisfiable":
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    start, end = wanted if wanted else (0, size)
    response = StreamingHttpResponse(
        image.iter_range(start, end),
        status=206 if wanted else 200,
        content_type="application/octet-stream",
    )
    response["Content-Length"] = str(end - start)
    response["Accept-Ranges"] = "bytes"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Index-Checksum"] = snapshot.index_checksum
    if wanted:
        response["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    return response
