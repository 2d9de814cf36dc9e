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
import asyncio
import json

import slixmpp

import slixrun
from slixrun import emit
from slixmpp.exceptions import IqError, IqTimeout

class Client(slixmpp.ClientXMPP):
    def __init__(self, args):
        super().__init__(args.jid, args.password,
                         plugin_config={'feature_mechanisms': {'use_mech': 'SCRAM-SHA-1'}})
        self.args = args
        self.copies = {'received': asyncio.Queue(), 'sent': asyncio.Queue()}
        self.result = asyncio.get_event_loop().create_future()
        slixrun.trust_test_server(self)
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

def arguments():
    p = slixrun.parser(timeout=30.0)
    p.add_argument('--steps', required=True)
    p.add_argument('--priority', type=int, default=0)
    return p

if __name__ == '__main__':
    slixrun.main(Client, arguments())
