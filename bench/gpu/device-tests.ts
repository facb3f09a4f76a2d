// The ava tests that touch a GPU, bundled (bench/gpu/prepare.sh) to run with plain Node on
// the lent GPU machine through bench/gpu/ava-shim.ts.
import '../../test/cuda.test';
import '../../test/net.fixtures.test';
import '../../test/gpu-train.test';
