#!/bin/sh
# Test extension, installed to run at the guest's first boot: record the
# addresses the guest configured, for tests/prepare/run to read.
ip -o addr > /root/rw-ip-addr.txt 2>&1
sync
