# Freeze microws into a MicroPython image:  include("path/to/microws/lib/manifest.py")
metadata(version="0.1.0", description="Small, fast RFC 6455 WebSocket client and server")  # noqa: F821

package("microws")  # noqa: F821
