"""``python -m examples.url_shortener [--host H] [--port P] [--url STORAGE_URL]``.

Serves the shortener with uvicorn on 127.0.0.1:8000 by default, over
``SSSHELF_URL`` (else the embedded ``sqlite:///ssshelf.db``).
"""

from __future__ import annotations

import argparse

import uvicorn

from .app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.url_shortener")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--url", help="storage URL (default: $SSSHELF_URL, else sqlite:///ssshelf.db)"
    )
    args = parser.parse_args()
    print(f"shortener on http://{args.host}:{args.port}/  (Ctrl-C to stop)", flush=True)
    uvicorn.run(create_app(url=args.url), host=args.host, port=args.port, log_level="warning")


main()
