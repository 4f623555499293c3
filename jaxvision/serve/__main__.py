"""``python -m jaxvision.serve --workdir W [--host 127.0.0.1] [--port 8000] [--api-key K]
[--int8-weights]``: the run's newest intact checkpoint behind an HTTP API (see
``jaxvision.serve.app``); ``--int8-weights`` keeps the weights as int8 (a quarter of the
bytes), dequantized inside the jitted function."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxvision.serve", description=__doc__)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to bind (default: loopback only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--max-queue", type=int, default=256)
    parser.add_argument("--timeout-s", type=float, default=30.0)
    parser.add_argument("--api-key", default=os.environ.get("JAXVISION_API_KEY"),
                        help="required in the X-API-Key header (default: $JAXVISION_API_KEY)")
    parser.add_argument("--int8-weights", action="store_true",
                        help="serve int8 weight-only quantized weights (per output channel)")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.workdir):
        print(f"error: no workdir at {args.workdir}", file=sys.stderr)
        return 2
    try:
        import uvicorn
    except ImportError:
        print('error: serving needs the serve extra: pip install "jaxvision[serve]"',
              file=sys.stderr)
        return 2
    from jaxvision import inference
    from jaxvision.export import serving_model
    from jaxvision.serve import ServeConfig, create_app

    config = ServeConfig(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
                         max_queue=args.max_queue, timeout_s=args.timeout_s,
                         api_key=args.api_key)
    app = create_app(serving_model(inference.load(args.workdir), portable=False,
                                   int8_weights=args.int8_weights), config)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info",
                timeout_graceful_shutdown=config.timeout_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
