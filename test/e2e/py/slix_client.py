#!/usr/bin/env python3
"""A real third-party client (slixmpp) for the Hyphae e2e suite.

Logs in over STARTTLS with exactly one SASL mechanism, binds a
server-generated resource, sends one chat message to --peer, waits for a
message whose body is --expect, then disconnects.

Prints one JSON object per line on stdout ({"event": ...}) and exits:
  0 success, 2 authentication failed, 3 timeout, 4 disconnected/other error.
"""
import asyncio
import json
import sys

try:
    import slixmpp
except ImportError:  # the test skips before running us, but be explicit
    print(json.dumps({"event": "error", "error": "slixmpp not importable"}))
    sys.exit(5)

import slixrun  # noqa: E402  (after the import check above)
from slixrun import emit  # noqa: E402

class Client(slixmpp.ClientXMPP):
    def __init__(self, args):
        super().__init__(
            args.jid,
            args.password,
            plugin_config={"feature_mechanisms": {"use_mech": args.mechanism}},
        )
        self.args = args
        self.result = asyncio.get_event_loop().create_future()
        slixrun.trust_test_server(self)
        self.add_event_handler("session_start", self.on_session_start)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("failed_auth", self.on_failed_auth)
        self.add_event_handler("disconnected", self.on_disconnected)

    def finish(self, code):
        if not self.result.done():
            self.result.set_result(code)

    async def on_session_start(self, _event):
        mech = getattr(self["feature_mechanisms"], "mech", None)
        emit(event="bound", jid=str(self.boundjid), mechanism=getattr(mech, "name", None))
        self.send_message(mto=self.args.peer, mbody=self.args.body, mtype="chat")
        emit(event="sent", to=self.args.peer)

    def on_message(self, msg):
        if msg["body"] == self.args.expect:
            emit(event="received", **{"from": str(msg["from"]), "body": msg["body"]})
            self.finish(0)

    def on_failed_auth(self, _event):
        emit(event="failed_auth")
        self.finish(2)

    def on_disconnected(self, reason):
        emit(event="disconnected", reason=str(reason))
        self.finish(4)

def arguments():
    p = slixrun.parser(timeout=20.0)
    p.add_argument("--peer", required=True)
    p.add_argument("--body", required=True)
    p.add_argument("--expect", required=True)
    p.add_argument("--mechanism", default="SCRAM-SHA-256")
    return p

if __name__ == '__main__':
    slixrun.main(Client, arguments())
