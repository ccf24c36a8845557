"""``scones-console``: the operator console against whatever the environment's credentials and endpoints reach.

    scones-console [--port N] [--host H] [--environment dev|prod|local] [--config FILE]

On AWS it uses the default credential chain (profile, SSO, instance role); after ``source
<run-dir>/local-aws.env`` it reaches a running ``scones-local serve`` (which also starts a console
of its own). It binds to 127.0.0.1 unless ``--host`` says otherwise, and prints its URL, with a
login token made for this start, once. Ctrl-C stops it.
"""
from __future__ import annotations

import argparse
import os
import sys

from console.server import LOOPBACK, boto3_clients, make_console
from scones_common.cli_args import port
from scones_common.config import ENVIRONMENTS, load_config
from scones_common.errors import cli_entry


def target_label(environ=os.environ) -> str:
    endpoint = environ.get("AWS_ENDPOINT_URL")
    return f"endpoint {endpoint}" if endpoint else f"AWS {environ.get('AWS_PROFILE', 'default credentials')}"


@cli_entry
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=port, default=None, help="TCP port (default: any free port)")
    parser.add_argument("--host", default=LOOPBACK,
                        help="address to bind (default 127.0.0.1); another value also becomes an allowed Host name")
    parser.add_argument("--environment", choices=ENVIRONMENTS)
    parser.add_argument("--config")
    args = parser.parse_args(argv)
    config = load_config(args.config, args.environment)
    console = make_console(boto3_clients(config.project.region), config, args.host, args.port or 0,
                           f"{target_label()} · {config.project.region}")
    if args.host != LOOPBACK:
        print(f"warning: listening on {args.host}: anyone who can reach it and has the URL acts with this "
              "process's AWS credentials; the connection is plain HTTP", file=sys.stderr)
    print(f"Operator console for {config.environment} ({config.pipeline.name}, endpoint {config.endpoint.name}):\n"
          f"  {console.url}\nCtrl-C stops it.", flush=True)
    try:
        console.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        console.server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
