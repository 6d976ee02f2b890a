// libFuzzer's driver, for keyhold-fuzz's own main (see Sources/keyhold-fuzz). Present only in a build made with
// -sanitize=fuzzer (deploy/fuzz.sh); the ordinary build of keyhold-fuzz never calls it.
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
