#!/bin/sh
# Healthy when the web gateway (demo or web) answers /health with 200 (every block served), or, for
# a server, when its gRPC port (POLLEN_GRPC_PORT, 50051 by default) accepts connections.
if curl -fsS -o /dev/null "http://127.0.0.1:${POLLEN_WEB_PORT:-8080}/health" 2>/dev/null; then
  exit 0
fi
exec bash -c "exec 3<>/dev/tcp/127.0.0.1/${POLLEN_GRPC_PORT:-50051}" 2>/dev/null
