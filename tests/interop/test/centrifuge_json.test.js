'use strict';
// centrifuge-js in its default JSON mode (text frames, no subprotocol) against tandem.

const { Centrifuge } = require('centrifuge');
const { defineScenarios } = require('../lib/scenarios');

defineScenarios('json', Centrifuge);
