// passenger-status --show=xml as Phusion Passenger 6 writes it, from a status document.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { StatusDocument } from '../../helper-agent/src/admin/protocol';
import { renderXml } from '../../helper-agent/src/cli/render-xml';

function doc(spawning: number, restarting: boolean): StatusDocument {
  return {
    schema: 1, version: '0.0.0', time: new Date(0).toISOString(),
    instance: { name: 'x', dir: '/tmp/x', watchdog_pid: 1, core_pid: 2, server: 'http://127.0.0.1:3000' },
    max_pool_size: 6, process_count: 0, capacity_used: spawning, top_level_queue: 0,
    groups: [{ name: '/srv/app', app_root: '/srv/app', environment: 'production', queue: 1, spawning, processes: [], last_spawn_error: null, restarting, app_type: 'node' }],
  };
}

test('a supergroup\'s state is READY whatever its group does, as Passenger 6.0.17 writes it (0 processes and 1 spawning included); the spawn shows in processes_being_spawned', () => {
  for (const [spawning, restarting] of [[0, false], [1, false], [1, true]] as const) {
    const xml = renderXml(doc(spawning, restarting));
    assert.match(xml, /<supergroup><name>\/srv\/app<\/name><state>READY<\/state>/);
    assert.match(xml, new RegExp(`<processes_being_spawned>${spawning}</processes_being_spawned>`));
  }
});
