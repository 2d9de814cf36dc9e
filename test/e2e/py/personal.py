#!/usr/bin/env python3
"""slixmpp (Debian's python3-slixmpp) driving the personal-data modules
through its own plugins: xep_0054 vcard-temp, xep_0153 vCard avatars,
xep_0049 private storage with xep_0048 bookmarks, xep_0012 last activity,
xep_0202 entity time.

Logs in (STARTTLS, SCRAM), sends initial presence, then runs --steps (a JSON
list of {"op": ..., ...}) in order. Prints one JSON object per line:
{"event": "bound", "jid"}, then {"event": "step", "i", "op", "ok", ...} per
step ("condition"/"error_type" when the server answered an error), then
{"event": "done"}. Exit 0 when every step ran, 3 on timeout, 4 otherwise.
"""
import asyncio
import base64
import hashlib
import json

import slixmpp

import slixrun
from slixrun import emit
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.plugins.xep_0048.stanza import Bookmarks

def sha1_hex(data):
    return hashlib.sha1(data).hexdigest() if data else ''

class Client(slixmpp.ClientXMPP):
    def __init__(self, args):
        super().__init__(args.jid, args.password,
                         plugin_config={'feature_mechanisms': {'use_mech': 'SCRAM-SHA-1'}})
        self.args = args
        self.messages = asyncio.Queue()
        self.result = asyncio.get_event_loop().create_future()
        slixrun.trust_test_server(self)
        for plugin in ('xep_0030', 'xep_0054', 'xep_0153', 'xep_0049', 'xep_0048', 'xep_0012', 'xep_0202'):
            self.register_plugin(plugin)
        self.add_event_handler('session_start', self.on_start)
        self.add_event_handler('message', lambda msg: self.messages.put_nowait(msg['body']))
        self.add_event_handler('failed_auth', lambda _e: self.finish(4))
        self.add_event_handler('disconnected', lambda _e: self.finish(4))

    def finish(self, code):
        if not self.result.done():
            self.result.set_result(code)

    async def on_start(self, _event):
        self.send_presence()
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

    # --- XEP-0054 / XEP-0153 ---------------------------------------------------
    async def op_get_vcard(self, s):
        iq = await self['xep_0054'].get_vcard(s['jid'], cached=False)
        v = iq['vcard_temp']
        return {'fn': v['FN'], 'photo': sha1_hex(v['PHOTO']['BINVAL']), 'children': len(v.xml)}

    async def op_publish_vcard(self, s):
        v = self['xep_0054'].make_vcard()
        v['FN'] = s['fn']
        await self['xep_0054'].publish_vcard(v, jid=s.get('jid'))

    async def op_set_avatar(self, s):
        data = base64.b64decode(s['data'])
        # Fetches the vCard, stores it with the photo, re-sends presence (XEP-0153 §3.1).
        await self['xep_0153'].set_avatar(avatar=data, mtype=s['type'])
        return {'photo': sha1_hex(data)}

    # --- XEP-0049 / XEP-0048 -----------------------------------------------------
    async def op_set_bookmarks(self, s):
        b = Bookmarks()
        b.add_conference(s['room'], s['nick'], name=s.get('name'), autojoin=True)
        await self['xep_0048'].set_bookmarks(b)

    async def op_get_bookmarks(self, s):
        iq = await self['xep_0048'].get_bookmarks()
        confs = iq['private']['bookmarks']['conferences']
        return {'conferences': [{'jid': str(c['jid']), 'nick': c['nick'], 'name': c['name'], 'autojoin': c['autojoin']} for c in confs]}

    async def op_get_private_of(self, s):
        iq = self.make_iq_get(ito=s['jid'])
        iq['private'].enable('bookmarks')
        await iq.send()

    # --- XEP-0012 / XEP-0202 -----------------------------------------------------
    async def op_last(self, s):
        iq = await self['xep_0012'].get_last_activity(s['jid'])
        return {'seconds': iq['last_activity']['seconds'], 'status': iq['last_activity']['status'] or ''}

    async def op_time(self, s):
        iq = await self['xep_0202'].get_entity_time(s['jid'])
        t = iq['entity_time']
        # The raw text: slixmpp 1.8's get_utc appends a 'Z' and get_tzo parses
        # '00:00:00' + tzo as a full DateTime, so neither reads a conforming
        # value ('2006-12-19T17:58:35Z', '-06:00': XEP-0202 §3).
        return {'utc': t._get_sub_text('utc'), 'tzo': t._get_sub_text('tzo')}

    # --- synchronisation -----------------------------------------------------------
    async def op_wait_message(self, s):
        while (await self.messages.get()) != s['body']:
            pass

    async def op_unavailable(self, s):
        self.send_presence(ptype='unavailable', pstatus=s.get('status'))

def arguments():
    p = slixrun.parser(timeout=30.0)
    p.add_argument('--steps', required=True)
    return p

if __name__ == '__main__':
    slixrun.main(Client, arguments())
