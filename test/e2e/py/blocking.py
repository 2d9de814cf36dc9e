#!/usr/bin/env python3
"""slixmpp (Debian's python3-slixmpp) with its own xep_0191 plugin, driven
step by step by test/harness/blocking.ts.

Logs in over STARTTLS (SCRAM), binds --resource, sends initial presence,
prints {"event": "bound", "jid"}, then reads one JSON command per line on
stdin:
  {"op": "get"}                     xep_0191 get_blocked()
  {"op": "block", "jids": [...]}    xep_0191 block(jids)
  {"op": "unblock", "jids": [...]}  xep_0191 unblock(jids) ([] = unblock all)
  {"op": "message", "to", "body"}   a chat message
  {"op": "quit"}
Each command is answered by {"event": "result", "op", "ok", "items"?,
"condition"?, "error_type"?}. Pushes the plugin reports become
{"event": "blocked"|"unblocked", "items"}; messages {"event": "message",
"from", "body", "type", "condition"?, "app"?}. Exit 0 after quit, 3 on
timeout, 4 when disconnected or on an error.
"""
import asyncio
import json
import sys
import threading

import slixmpp

import slixrun
from slixrun import emit
from slixmpp.exceptions import IqError, IqTimeout

BLOCKING_ERRORS = 'urn:xmpp:blocking:errors'

def items_of(iq, name):
    return sorted(str(j) for j in iq[name]['items'])

class Client(slixmpp.ClientXMPP):
    def __init__(self, args):
        super().__init__(args.jid, args.password)
        self.args = args
        self.result = asyncio.get_event_loop().create_future()
        slixrun.trust_test_server(self)
        self.register_plugin('xep_0030')
        self.register_plugin('xep_0191')
        self.add_event_handler('session_start', self.on_start)
        self.add_event_handler('blocked', lambda iq: emit(event='blocked', items=items_of(iq, 'block')))
        self.add_event_handler('unblocked', lambda iq: emit(event='unblocked', items=items_of(iq, 'unblock')))
        self.add_event_handler('message', self.on_message)
        self.add_event_handler('failed_auth', lambda _e: self.finish(4))
        self.add_event_handler('disconnected', lambda _e: self.finish(4))

    def finish(self, code):
        if not self.result.done():
            self.result.set_result(code)

    def on_message(self, msg):
        ev = {'event': 'message', 'from': str(msg['from']), 'body': msg['body'], 'type': msg['type']}
        if msg['type'] == 'error':
            ev['condition'] = msg['error']['condition']
            ev['app'] = [c.tag for c in msg['error'].xml if c.tag.startswith('{%s}' % BLOCKING_ERRORS)]
        emit(**ev)

    async def on_start(self, _event):
        self.send_presence()
        emit(event='bound', jid=str(self.boundjid))
        loop = asyncio.get_event_loop()
        threading.Thread(target=self.read_commands, args=(loop,), daemon=True).start()

    def read_commands(self, loop):
        for line in sys.stdin:
            if line.strip():
                asyncio.run_coroutine_threadsafe(self.run(json.loads(line)), loop)
        loop.call_soon_threadsafe(self.finish, 4)

    async def run(self, cmd):
        op = cmd['op']
        plugin = self['xep_0191']
        try:
            if op == 'get':
                iq = await plugin.get_blocked(timeout=10)
                emit(event='result', op=op, ok=True, items=items_of(iq, 'blocklist'))
            elif op == 'block':
                await plugin.block(cmd['jids'], timeout=10)
                emit(event='result', op=op, ok=True)
            elif op == 'unblock':
                await plugin.unblock(cmd['jids'], timeout=10)
                emit(event='result', op=op, ok=True)
            elif op == 'message':
                self.send_message(mto=cmd['to'], mbody=cmd['body'], mtype='chat')
                emit(event='result', op=op, ok=True)
            elif op == 'quit':
                emit(event='result', op=op, ok=True)
                self.finish(0)
        except IqError as e:
            emit(event='result', op=op, ok=False, condition=e.iq['error']['condition'], error_type=e.iq['error']['type'])
        except IqTimeout:
            emit(event='result', op=op, ok=False, condition='timeout')

def arguments():
    p = slixrun.parser(timeout=60.0)
    return p

if __name__ == '__main__':
    slixrun.main(Client, arguments())
