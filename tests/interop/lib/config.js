'use strict';
// The base server config for the interop tests (Centrifugo v6 key names), and a deep merge
// to override parts of it per test, e.g. testConfig({client: {ping_interval: '1s'}}).

const API_KEY = 'test-api-key';

function baseConfig() {
  return {
    client: {
      insecure: true,
      allowed_origins: ['*'],
    },
    http_api: {
      key: API_KEY,
    },
    channel: {
      without_namespace: {
        presence: true,
        join_leave: true,
        force_push_join_leave: true,
        history_size: 100,
        history_ttl: '300s',
        force_recovery: true,
        allow_publish_for_subscriber: true,
        allow_publish_for_client: true,
        allow_presence_for_subscriber: true,
        allow_history_for_subscriber: true,
      },
      namespaces: [
        {
          name: 'smallhistory',
          history_size: 2,
          history_ttl: '300s',
          force_recovery: true,
          allow_publish_for_client: true,
        },
        {
          name: 'nohistory',
          allow_publish_for_client: true,
        },
      ],
    },
  };
}

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

// Objects merge key by key; arrays and scalars in `over` replace those in `base`;
// a value of undefined removes the key.
function merge(base, over) {
  const out = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) delete out[k];
    else if (isPlainObject(v) && isPlainObject(out[k])) out[k] = merge(out[k], v);
    else out[k] = v;
  }
  return out;
}

/** Returns a fresh copy of the base config with `overrides` deep-merged into it. */
function testConfig(overrides = {}) {
  return merge(baseConfig(), overrides);
}

module.exports = { API_KEY, baseConfig, testConfig };
