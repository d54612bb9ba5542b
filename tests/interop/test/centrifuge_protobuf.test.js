'use strict';
// centrifuge-js in Protobuf mode (subprotocol "centrifuge-protobuf", binary frames) against
// tandem. Payloads are bytes in this mode; the shared scenarios encode them as JSON text.

const { Centrifuge } = require('centrifuge/build/protobuf');
const { defineScenarios } = require('../lib/scenarios');

defineScenarios('protobuf', Centrifuge);
