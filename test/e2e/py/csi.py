#!/usr/bin/env python3
"""slixmpp (Debian's python3-slixmpp) with its own xep_0352 plugin, driven
step by step by test/harness/csi.ts.

Logs in over STARTTLS (SCRAM), binds the resource of --jid, sends initial presence,
prints {"event": "bound", "jid", "csi"} (csi: whether the plugin saw the
stream feature), then reads one JSON command per line on stdin:
  {"op": "inactive"} / {"op": "active"}   xep_0352 send_inactive()/send_active(),
                                          then a xep_0199 ping of the server: its
                                          answer means the nonza was processed
                                          (XEP-0352 §5.1 in-order processing)
  {"op": "quit"}
Each command is answered by {"event": "result", "op", "ok"}. Every presence
and message from another JID is printed as {"event": "stanza", "name",
"from", "type", "show", "body", "state"} in order of arrival. Exit 0 after
quit, 3 on timeout, 4 when disconnected or on an error.
"""
import asyncio
import json
import sys
import threading

import slixmpp

import slixrun
from slixrun import emit
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

CHATSTATES = 'http://jabber.org/protocol/chatstates'

class Client(slixmpp.ClientXMPP):
    def __init__(self, args):
        super().__init__(args.jid, args.password)
        self.result = asyncio.get_event_loop().create_future()
        slixrun.trust_test_server(self)
        for plugin in ('xep_0030', 'xep_0199', 'xep_0352'):
            self.register_plugin(plugin)
        self.add_event_handler('session_start', self.on_start)
        # Every message: slixmpp's 'message' event fires only for those with a body.
        self.register_handler(Callback('csi messages', MatchXPath('{jabber:client}message'), lambda m: self.on_stanza(m, 'message')))
        self.add_event_handler('presence', lambda p: self.on_stanza(p, 'presence'))
        self.add_event_handler('failed_auth', lambda _e: self.finish(4))
        self.add_event_handler('disconnected', lambda _e: self.finish(4))

    def finish(self, code):
        if not self.result.done():
            self.result.set_result(code)

    def on_stanza(self, st, name):
        if st['from'].bare == self.boundjid.bare:
            return
        state = [c.tag.split('}')[1] for c in st.xml if c.tag.startswith('{%s}' % CHATSTATES)]
        emit(event='stanza', name=name, to=str(st['to']), **{'from': str(st['from'])}, type=st['type'],
             show=st.xml.findtext('{jabber:client}show'), body=st.xml.findtext('{jabber:client}body'),
             state=state[0] if state else None)

    async def on_start(self, _event):
        self.send_presence()
        emit(event='bound', jid=str(self.boundjid), csi=self['xep_0352'].enabled)
        loop = asyncio.get_event_loop()
        threading.Thread(target=self.read_commands, args=(loop,), daemon=True).start()

    def read_commands(self, loop):
        for line in sys.stdin:
            if line.strip():
                asyncio.run_coroutine_threadsafe(self.run(json.loads(line)), loop)
        loop.call_soon_threadsafe(self.finish, 4)

    async def run(self, cmd):
        op = cmd['op']
        try:
            if op in ('inactive', 'active'):
                plugin = self['xep_0352']
                plugin.send_inactive() if op == 'inactive' else plugin.send_active()
                await self['xep_0199'].ping(jid=self.boundjid.domain, timeout=10)
                emit(event='result', op=op, ok=True)
            elif op == 'quit':
                emit(event='result', op=op, ok=True)
                self.finish(0)
        except (IqError, IqTimeout) as e:
            emit(event='result', op=op, ok=False, error=str(e))

def arguments():
    p = slixrun.parser(timeout=60.0)
    return p

if __name__ == '__main__':
    slixrun.main(Client, arguments())
