"""What step 4 (and a download link's page) tells the customer to do with the package.

The product description's protection instructions, chosen by platform, distribution and
driver type, around one link. Shared by the wizard and the download link pages.
"""

from .crypto import SealError
from .models import DownloadLink
from .packages import package_filename
from .requirements import DKMS_COMMANDS
from .services.downloads import download_link_url, package_spec

INSTALL_COMMANDS = [
    ("Ubuntu/Debian machines", "dpkg -i hlragent.deb"),
    ("RHEL/CentOS machines", "rpm -i hlragent.rpm"),
]


def curl_command(filename: str, url: str) -> str:
    """``curl -k -o hlragent.deb '<link>'`` as the product shows it: always single-quoted."""
    quoted = "'" + url.replace("'", "'\\''") + "'"
    return f"curl -k -o {filename} {quoted}"


def instructions_context(link: DownloadLink | None) -> dict:
    """Template context for ``clouds/_protection_instructions.html``."""
    if link is None:
        return {"link": None}
    spec = package_spec(link)
    filename = package_filename(spec)
    refusal = link.refusal()
    try:
        url = download_link_url(link)
    except SealError:  # sealed under a SECRET_KEY that is gone: it cannot be shown again
        url, refusal = "", refusal or "This link can no longer be shown (the server's key changed)."
    context = {
        "link": link,
        "link_url": url,
        "link_refusal": refusal,
        "filename": filename,
        "platform": link.platform,
        "curl_command": curl_command(filename, url),
        "install_commands": INSTALL_COMMANDS,
    }
    if link.platform == "linux":
        context["dkms"] = link.driver == "dkms"
        context["dkms_commands"] = DKMS_COMMANDS
        # The package matches the chosen distribution; the other one's command is shown too
        # because the product's instructions list both.
        context["other_filename"] = "hlragent.rpm" if link.distro == "debian" else "hlragent.deb"
    return context
