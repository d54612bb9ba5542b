#!/usr/bin/env bash
# Starts tandem with a development configuration: insecure client mode and a fixed API key.
# NOT FOR PRODUCTION: any client may connect, subscribe and publish without a token.
set -euo pipefail
cd "$(dirname "$0")/.."
ADDRESS=${TANDEM_ADDRESS:-127.0.0.1}
PORT=${TANDEM_PORT:-8000}
KEY=${TANDEM_DEV_API_KEY:-dev-api-key}
mkdir -p build
cat > build/dev-config.json <<JSON
{
  "client": { "insecure": true, "allowed_origins": ["*"] },
  "http_api": { "key": "$KEY" },
  "channel": {
    "without_namespace": {
      "presence": true,
      "join_leave": true,
      "history_size": 100,
      "history_ttl": "300s",
      "force_recovery": true
    }
  }
}
JSON
cat <<MSG
------------------------------------------------------------------------------
 tandem development server on http://$ADDRESS:$PORT
   DEVELOPMENT ONLY, NOT FOR PRODUCTION:
   - client.insecure = true  (no tokens: anyone may connect, subscribe, publish)
   - http_api.key    = $KEY
 WebSocket endpoint:  ws://$ADDRESS:$PORT/connection/websocket
 Publish to channel "news" (in another terminal):
   curl -s -X POST http://$ADDRESS:$PORT/api/publish \\
     -H 'X-API-Key: $KEY' -d '{"channel":"news","data":{"text":"hello"}}'
 Read it back:
   curl -s -X POST http://$ADDRESS:$PORT/api/history \\
     -H 'X-API-Key: $KEY' -d '{"channel":"news","limit":10}'
 Stop with Ctrl-C.
------------------------------------------------------------------------------
MSG
exec build/tandem --config build/dev-config.json --address "$ADDRESS" --port "$PORT" \
  --data-dir "${TANDEM_DATA_DIR:-./tandem-data}"
