#!/usr/bin/env python3
"""slixmpp (Debian's python3-slixmpp) with its own xep_0280 plugin: enables
and disables Message Carbons and receives <received/> and <sent/> copies
(the plugin raises carbon_received/carbon_sent only for copies from the
account's bare JID, XEP-0280 §11).

Logs in (STARTTLS, SCRAM), sends initial presence with --priority, then runs
--steps (a JSON list of {"op": ..., ...}) in order. Prints one JSON object
per line: {"event": "bound", "jid"}, then {"event": "step", "i", "op",
"ok", ...} per step ("condition"/"error_type" when the server answered an
error), then {"event": "done"}. Exit 0 when every step ran, 3 on timeout,
4 otherwise.

Ops: enable, disable; wait_received/wait_sent {"body"} → the copy's outer
from/to/type and the forwarded message's from/to/body; send {"to", "body"}.
"""
import argparse
import asyncio
import json
import logging
import ssl
import sys

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout


def emit(**kw):
    print(json.dumps(kw), flush=True)


class Client(slixmpp.ClientXMPP):
    def __init__(self, args):
        super().__init__(args.jid, args.password,
                         plugin_config={'feature_mechanisms': {'use_mech': 'SCRAM-SHA-1'}})
        self.args = args
        self.copies = {'received': asyncio.Queue(), 'sent': asyncio.Queue()}
        self.result = asyncio.get_event_loop().create_future()
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        for plugin in ('xep_0030', 'xep_0297', 'xep_0280'):
            self.register_plugin(plugin)
        self.add_event_handler('session_start', self.on_start)
        self.add_event_handler('carbon_received', lambda m: self.copies['received'].put_nowait(m))
        self.add_event_handler('carbon_sent', lambda m: self.copies['sent'].put_nowait(m))
        self.add_event_handler('failed_auth', lambda _e: self.finish(4))
        self.add_event_handler('disconnected', lambda _e: self.finish(4))

    def finish(self, code):
        if not self.result.done():
            self.result.set_result(code)

    async def on_start(self, _event):
        self.send_presence(ppriority=self.args.priority)
        emit(event='bound', jid=str(self.boundjid))
        for i, step in enumerate(json.loads(self.args.steps)):
            op = step['op']
            try:
                out = await getattr(self, 'op_' + op)(step)
                emit(event='step', i=i, op=op, ok=True, **(out or {}))
            except IqError as e:
                err = e.iq['error']
                emit(event='step', i=i, op=op, ok=False, condition=err['condition'], error_type=err['type'])
            except IqTimeout:
                emit(event='step', i=i, op=op, ok=False, condition='timeout')
        emit(event='done')
        self.finish(0)

    async def op_enable(self, _s):
        iq = await self['xep_0280'].enable()
        return {'type': iq['type']}

    async def op_disable(self, _s):
        iq = await self['xep_0280'].disable()
        return {'type': iq['type']}

    async def wait_copy(self, direction, body):
        while True:
            msg = await self.copies[direction].get()
            # An extension: the plugin interface is the forwarded stanza itself.
            inner = msg['carbon_received' if direction == 'received' else 'carbon_sent']
            if inner != '' and inner['body'] == body:
                return {'outer_from': str(msg['from']), 'outer_to': str(msg['to']), 'outer_type': msg['type'],
                        'from': str(inner['from']), 'to': str(inner['to']), 'body': inner['body']}

    async def op_wait_received(self, s):
        return await self.wait_copy('received', s['body'])

    async def op_wait_sent(self, s):
        return await self.wait_copy('sent', s['body'])

    async def op_send(self, s):
        self.send_message(mto=s['to'], mbody=s['body'], mtype='chat')


async def main():
    p = argparse.ArgumentParser()
    for a in ('--jid', '--password', '--host', '--steps'):
        p.add_argument(a, required=True)
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--priority', type=int, default=0)
    p.add_argument('--timeout', type=float, default=30.0)
    p.add_argument('--debug', action='store_true')
    args = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR, stream=sys.stderr)
    c = Client(args)
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


if __name__ == '__main__':
    sys.exit(asyncio.get_event_loop().run_until_complete(main()))
