"""What the slixmpp e2e clients share: one JSON event per line on stdout,
the common arguments, and the run: log in over STARTTLS to the test
server (self-signed certificate), wait for the client's result, disconnect.

Exit codes: 0 success, 2 authentication failed, 3 timeout, 4 disconnected/other error.
"""
import argparse
import asyncio
import json
import logging
import ssl
import sys


def emit(**kw):
    print(json.dumps(kw), flush=True)


def trust_test_server(client):
    """The test server's certificate is self-signed."""
    client.ssl_context.check_hostname = False
    client.ssl_context.verify_mode = ssl.CERT_NONE


def parser(timeout):
    p = argparse.ArgumentParser()
    for a in ('--jid', '--password', '--host'):
        p.add_argument(a, required=True)
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--timeout', type=float, default=timeout)
    p.add_argument('--debug', action='store_true')
    return p


async def run(make_client, args):
    """Connects the client, waits for its `result` future (the exit code), disconnects."""
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR, stream=sys.stderr)
    c = make_client(args)
    c.connect((args.host, args.port), force_starttls=True)
    try:
        code = await asyncio.wait_for(c.result, args.timeout)
    except asyncio.TimeoutError:
        emit(event='timeout')
        code = 3
    if code != 4:
        c.disconnect()
        try:
            await asyncio.wait_for(c.disconnected, 5)
        except Exception:
            pass
    return code


def main(make_client, p):
    """Parses `p`'s arguments and runs the client to its exit code."""
    args = p.parse_args()
    sys.exit(asyncio.get_event_loop().run_until_complete(run(make_client, args)))
