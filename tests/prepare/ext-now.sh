#!/bin/sh
# Test extension, run in the guest's root during rw-prepare.
echo "extension ran in $(cat /etc/hostname)"
