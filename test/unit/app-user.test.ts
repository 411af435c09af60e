// Who an app runs as (Passenger's rules), on a fake user database; and the
// real lookups through the C library (native addon).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, SpawnError } from '../../helper-agent/src/errors';
import { lookupGroup, lookupUser, type UserEntry } from '../../helper-agent/src/platform/native';
import { appUserFor, defaultIdentity, type UserDb, type UserPolicy } from '../../helper-agent/src/spawn/app-user';

const USERS: UserEntry[] = [
  { name: 'root', uid: 0, gid: 0, home: '/root', shell: '/bin/bash', groups: [0] },
  { name: 'nobody', uid: 65534, gid: 65534, home: '/nonexistent', shell: '/usr/sbin/nologin', groups: [65534] },
  { name: 'alice', uid: 1000, gid: 1000, home: '/home/alice', shell: '/bin/bash', groups: [1000, 27] },
  { name: 'bob', uid: 1001, gid: 0, home: '/home/bob', shell: '/bin/sh', groups: [0] },
];
const GROUPS = [{ name: 'root', gid: 0 }, { name: 'nogroup', gid: 65534 }, { name: 'alice', gid: 1000 }, { name: 'sudo', gid: 27 }, { name: 'www-data', gid: 33 }];

function db(owners: Record<string, number>): UserDb {
  return {
    user(k, gid) {
      const u = USERS.find((x) => x.name === k || x.uid === k);
      // As getgrouplist(name, gid): the base group first, then the user's other memberships.
      return u && gid !== undefined ? { ...u, groups: [gid, ...u.groups.filter((g) => g !== u.gid && g !== gid)] } : u ?? null;
    },
    group: (k) => GROUPS.find((g) => g.name === k || g.gid === k) ?? null,
    ownerOf: (file) => (file in owners ? { uid: owners[file], gid: 0 } : null),
  };
}

const ON: UserPolicy = { switching: true, defaultUser: 'nobody', defaultGroup: undefined };
const app = { appRoot: '/srv/app', startupFile: 'app.js', appStartCommand: undefined, user: undefined, group: undefined };

test('the owner of the startup file; root means the default user and its group', () => {
  const alice = appUserFor(app, ON, db({ '/srv/app/app.js': 1000 }));
  assert.deepEqual(alice, { name: 'alice', uid: 1000, gid: 1000, groups: [1000, 27], home: '/home/alice', shell: '/bin/bash' });
  const rooted = appUserFor(app, ON, db({ '/srv/app/app.js': 0 }));
  assert.deepEqual([rooted.name, rooted.uid, rooted.gid], ['nobody', 65534, 65534]);
});

test('app_start_command apps: the owner of Passengerfile.json, else of the app root', () => {
  const cmd = { ...app, appStartCommand: 'python3 -m http.server $PORT' };
  assert.equal(appUserFor(cmd, ON, db({ '/srv/app/Passengerfile.json': 1000, '/srv/app': 0 })).name, 'alice');
  assert.equal(appUserFor(cmd, ON, db({ '/srv/app': 1000 })).name, 'alice');
});

test('user and group keys; group 0 means the default group; a user named root still runs as the default user', () => {
  const keyed = appUserFor({ ...app, user: 'alice', group: 'www-data' }, ON, db({ '/srv/app/app.js': 0 }));
  assert.deepEqual([keyed.uid, keyed.gid, keyed.groups], [1000, 33, [33, 27]]);
  const bob = appUserFor(app, { ...ON, defaultGroup: 'nogroup' }, db({ '/srv/app/app.js': 1001 }));
  assert.deepEqual([bob.uid, bob.gid], [1001, 65534], 'bob\'s primary group is 0: the default group instead');
  assert.equal(appUserFor({ ...app, user: 'root' }, ON, db({})).uid, 65534);
});

test('an app owned by a user cannot name another user, nor a group that user is not in (only root\'s apps can)', () => {
  const isUserError = (re: RegExp) => (e: unknown): boolean => e instanceof SpawnError && e.step === 'user' && re.test(e.message);
  assert.throws(() => appUserFor({ ...app, user: 'alice' }, ON, db({ '/srv/app/app.js': 1001 })), isUserError(/belongs to uid 1001, so the app may run only as that user, not as "alice"/));
  assert.throws(() => appUserFor({ ...app, group: 'www-data' }, ON, db({ '/srv/app/app.js': 1000 })), isUserError(/alice is not in the group "www-data"/));
  assert.equal(appUserFor({ ...app, group: 'sudo' }, ON, db({ '/srv/app/app.js': 1000 })).gid, 27, 'one of the user\'s own groups');
  assert.equal(appUserFor({ ...app, user: 'alice' }, ON, db({ '/srv/app/app.js': 1000 })).uid, 1000, 'the owner itself');
});

test('user switching off: every app runs as the default user', () => {
  const off = appUserFor({ ...app, user: 'alice' }, { ...ON, switching: false }, db({ '/srv/app/app.js': 1000 }));
  assert.deepEqual([off.name, off.gid], ['nobody', 65534]);
});

test('a user or group that does not exist is a spawn error (step "user"); a root default is a config error', () => {
  const isUserError = (re: RegExp) => (e: unknown): boolean => e instanceof SpawnError && e.step === 'user' && re.test(e.message);
  assert.throws(() => appUserFor({ ...app, user: 'carol' }, ON, db({})), isUserError(/"carol" .* does not exist/));
  assert.throws(() => appUserFor({ ...app, group: 'wheel' }, ON, db({ '/srv/app/app.js': 1000 })), isUserError(/group "wheel" .* does not exist/));
  assert.throws(() => appUserFor(app, ON, db({ '/srv/app/app.js': 4242 })), isUserError(/uid 4242, which has no user entry/));
  assert.throws(() => defaultIdentity({ ...ON, defaultUser: 'root' }, db({})), ConfigError);
  assert.throws(() => defaultIdentity({ ...ON, defaultUser: 'carol' }, db({})), /the default user "carol" does not exist/);
});

test('the C library lookups: root by name and uid, groups from a base gid, null for none, TypeError for nonsense', () => {
  const root = lookupUser('root');
  assert.equal(root?.uid, 0);
  assert.deepEqual(lookupUser(0), root);
  assert.ok(root?.groups.includes(0));
  assert.equal(lookupUser('root', 4242)?.groups.includes(4242), true, 'getgrouplist starts from the given group');
  assert.equal(lookupUser('no-such-user-pts'), null);
  assert.deepEqual(lookupGroup(0)?.gid, 0);
  assert.equal(lookupGroup('no-such-group-pts'), null);
  assert.throws(() => (lookupUser as (k: unknown) => unknown)({}), TypeError);
  assert.throws(() => lookupUser(-1), TypeError);
  assert.throws(() => lookupUser(''), TypeError);
});
