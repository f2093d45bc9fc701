ms() { read -r up _ </proc/uptime; echo $up; }
for i in 1 2 3; do a=$(ms); node -e 'console.log(process.version)' >/dev/null; b=$(ms); echo "node -e: $a -> $b"; done
a=$(ms); cat /usr/bin/node > /dev/null; b=$(ms); echo "read node binary ($(stat -c %s /usr/bin/node) bytes): $a -> $b"
a=$(ms); find /usr/lib -type f | wc -l; b=$(ms); echo "find /usr/lib: $a -> $b"
dmesg | grep -i 9p | head
