#!/bin/sh
# Runs a pollen command. A server must announce an address the other containers can reach: unless
# --host is given, `serve` gets this container's own IP address (POLLEN_HOST overrides it).
set -e
if [ "$1" = "serve" ] && ! echo " $* " | grep -q -- " --host "; then
  host="${POLLEN_HOST:-$(hostname -i | awk '{print $1}')}"
  set -- "$@" --host "$host"
fi
# Servers run on the C1 compiler only (see the pollen script); POLLEN_JAVA_OPTS can say otherwise.
server_opts=""
if [ "$1" = "serve" ]; then
  server_opts="-XX:TieredStopAtLevel=1 -Xms32m -XX:MinHeapFreeRatio=10 -XX:MaxHeapFreeRatio=30 -XX:G1PeriodicGCInterval=30000"
fi
exec java $server_opts ${POLLEN_JAVA_OPTS:-} --add-modules java.se --add-exports java.base/jdk.internal.ref=ALL-UNNAMED \
  --add-opens java.base/java.lang=ALL-UNNAMED --add-opens java.base/sun.nio.ch=ALL-UNNAMED \
  --add-opens java.management/sun.management=ALL-UNNAMED \
  --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED \
  -jar /opt/pollen/pollen.jar "$@"
