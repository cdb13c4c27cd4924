// The P-256 operations of the portable core run on BearSSL's separate stack:
// ECDSA and ECDH need more than the 4 KB the Arduino loop() stack has. The
// core calls thunk_iog_ec_* on this core (see src/iotguard/iog_crypto.c);
// make_stack_thunk() builds each one. stack_thunk_add_ref() in setup()
// allocates that stack (about 6 KB of heap) once.
#include <Arduino.h>
#include <StackThunk.h>

extern "C" {
#include "src/iotguard/iog_crypto.h"
}

make_stack_thunk(iog_ec_sign_impl);
make_stack_thunk(iog_ec_verify_impl);
make_stack_thunk(iog_ec_mul_impl);
make_stack_thunk(iog_ec_pub_impl);
