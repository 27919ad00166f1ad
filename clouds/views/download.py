"""The download behind a link: no login (``curl -k -o … '<link>'`` on the target machine),
the unguessable link is the key. Every request is counted and logged by the service."""

from django.http import FileResponse, HttpResponse
from django.views import View

from ..services.downloads import DownloadRefused, download_link_peek, download_link_serve


class DownloadView(View):
    def get(self, request, text: str):
        try:
            package = download_link_serve(
                text,
                remote_addr=request.META.get("REMOTE_ADDR"),
                user_agent=request.headers.get("User-Agent", ""),
            )
        except DownloadRefused as exc:
            return HttpResponse(
                exc.message + "\n", status=exc.status, content_type="text/plain; charset=utf-8"
            )
        response = FileResponse(
            package.path.open("rb"),
            as_attachment=True,
            filename=package.filename,
            content_type=package.content_type,
        )
        response["Cache-Control"] = "no-store"
        response["X-Content-Type-Options"] = "nosniff"
        return response

    def head(self, request, text: str):
        """What a download would be, without building, counting or logging one."""
        try:
            filename, content_type = download_link_peek(text)
        except DownloadRefused as exc:
            return HttpResponse(status=exc.status, content_type="text/plain; charset=utf-8")
        response = HttpResponse(content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        response["Cache-Control"] = "no-store"
        return response
