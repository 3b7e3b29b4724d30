#!/usr/bin/env node
// Bin shim: the block manager of a HighThroughputEngine block, as a container image runs it
// (container_type: the image needs `conduit-block-manager` on its PATH; see the README's Containers section).
import "../dist/worker/block-manager.js";
