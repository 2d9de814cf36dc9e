import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JID } from '@hyphae/jid';
import { openEmbeddedStores, type Stores } from '@hyphae/store';
import { Room } from './room.js';

const limits = { maxOccupants: 100, defaultMaxUsers: 50, maxHistory: 20, defaultHistory: 3 };

async function withStores(fn: (a: Stores, b: Stores) => Promise<void>): Promise<void> {
  const dirs = [await mkdtemp(join(tmpdir(), 'hy-room-')), await mkdtemp(join(tmpdir(), 'hy-room-'))];
  const [a, b] = await Promise.all(dirs.map((dir) => openEmbeddedStores({ dir })));
  try {
    await fn(a as Stores, b as Stores);
  } finally {
    await Promise.all([a?.close(), b?.close()]);
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  }
}

test('rewrite() gives a store that lost the room the room as its actor holds it', async () => {
  await withStores(async (before, empty) => {
    const room = Room.create(new JID('lobby', 'conference.example.org'), limits, false, 1_700_000_000_000);
    await room.saveMeta(before.rooms);
    await room.setAffiliation(before.rooms, 'owner@example.org', { affiliation: 'owner' });
    await room.setAffiliation(before.rooms, 'bad@example.org', { affiliation: 'outcast', reason: 'spam' });
    await room.putOccupant(before.rooms, {
      nick: 'boss', bare: 'owner@example.org', role: 'moderator',
      sessions: [{ jid: 'owner@example.org/desk', node: 'c2s-1', sessionId: 's1', presence: '<presence/>' }],
    });
    await room.putOccupant(before.rooms, {
      nick: 'guest', bare: 'guest@example.org', role: 'participant',
      sessions: [{ jid: 'guest@example.org/phone', node: 'c2s-2', sessionId: 's2', presence: '<presence><show>away</show></presence>' }],
    });
    await room.setSubject(before.rooms, { text: 'Today', nick: 'boss', at: 1 });
    const errors: unknown[] = [];
    for (let i = 0; i < 5; i++) room.addHistory(before.rooms, { xml: `<message id='h${i}'/>`, at: i, nick: 'guest' }, (e) => errors.push(e));
    // History writes are not awaited (room.ts): wait for them to land.
    let stored = await before.rooms.load(room.bare);
    for (let i = 0; i < 100 && (stored?.history.length ?? 0) < 3; i++) {
      await new Promise((r) => setTimeout(r, 10));
      stored = await before.rooms.load(room.bare);
    }
    assert.ok(stored);
    assert.equal(stored.history.length, 3, 'the history length of the room');

    // A store that lost everything, then one that saw part of it again (a handler's write since the loss).
    await empty.rooms.pushHistory(room.bare, JSON.stringify({ xml: "<message id='h4'/>", at: 4, nick: 'guest' }), 3);
    await room.rewrite(empty.rooms);
    assert.deepEqual(await empty.rooms.load(room.bare), stored, 'the same room: meta, affiliations, subject, occupants, history');
    assert.deepEqual(await empty.rooms.ownedBy('owner@example.org'), [room.bare], 'the owner index');
    assert.deepEqual((await empty.rooms.list('conference.example.org', { max: 10, publicOnly: false })).items.map((r) => r.room), [room.bare], 'the listing');
    assert.deepEqual(errors, []);
  });
});
