/* An application that, like OpenSSL's cleanup (libp11, pkcs11-provider),
 * closes its PKCS#11 session from an atexit handler: after main returns,
 * when the C library has already run the thread-local destructors.
 *
 *   atexit_session MODULE.so PIN
 *
 * Logs in as the user on the first slot with a token and leaves the rest to
 * the atexit handler: C_GenerateRandom (an APDU, traced when logging is on),
 * C_CloseSession (the last session: the token's login ends there) and
 * C_Finalize. Exit status 0 means the module survived; the handler reports
 * failures with _exit(10 + step). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef unsigned long CK_ULONG;
typedef CK_ULONG CK_RV;
typedef struct { unsigned char major, minor; } CK_VERSION;
/* The 2.40 function table: the version, then 68 function pointers in the
 * standard order (only the ones used here are named by index). */
typedef struct { CK_VERSION version; void *fn[68]; } FUNCTION_LIST;
enum { F_INITIALIZE = 0, F_FINALIZE = 1, F_GET_SLOT_LIST = 4, F_OPEN_SESSION = 12,
       F_CLOSE_SESSION = 13, F_LOGIN = 18, F_GENERATE_RANDOM = 64 };
typedef CK_RV (*get_list_fn)(FUNCTION_LIST **);
typedef CK_RV (*init_fn)(void *);
typedef CK_RV (*slot_list_fn)(unsigned char, CK_ULONG *, CK_ULONG *);
typedef CK_RV (*open_fn)(CK_ULONG, CK_ULONG, void *, void *, CK_ULONG *);
typedef CK_RV (*close_fn)(CK_ULONG);
typedef CK_RV (*login_fn)(CK_ULONG, CK_ULONG, unsigned char *, CK_ULONG);
typedef CK_RV (*random_fn)(CK_ULONG, unsigned char *, CK_ULONG);

#define CKF_RW_SESSION 2UL
#define CKF_SERIAL_SESSION 4UL
#define CKU_USER 1UL

static FUNCTION_LIST *f;
static CK_ULONG session;

static void at_exit(void) {
    unsigned char random[8];
    CK_RV rv = ((random_fn)f->fn[F_GENERATE_RANDOM])(session, random, sizeof random);
    if (rv != 0) {
        fprintf(stderr, "C_GenerateRandom in atexit: 0x%lx\n", rv);
        _exit(13);
    }
    rv = ((close_fn)f->fn[F_CLOSE_SESSION])(session);
    if (rv != 0) {
        fprintf(stderr, "C_CloseSession in atexit: 0x%lx\n", rv);
        _exit(11);
    }
    rv = ((init_fn)f->fn[F_FINALIZE])(NULL);
    if (rv != 0) {
        fprintf(stderr, "C_Finalize in atexit: 0x%lx\n", rv);
        _exit(12);
    }
    fprintf(stderr, "atexit: session closed, module finalized\n");
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODULE PIN\n", argv[0]);
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 3;
    }
    get_list_fn get = (get_list_fn)dlsym(lib, "C_GetFunctionList");
    if (!get || get(&f) != 0) return 4;
    if (((init_fn)f->fn[F_INITIALIZE])(NULL) != 0) return 5;
    CK_ULONG slots[8], n = 8;
    if (((slot_list_fn)f->fn[F_GET_SLOT_LIST])(1, slots, &n) != 0 || n == 0) return 6;
    if (((open_fn)f->fn[F_OPEN_SESSION])(slots[0], CKF_SERIAL_SESSION | CKF_RW_SESSION,
                                         NULL, NULL, &session) != 0) return 7;
    CK_RV rv = ((login_fn)f->fn[F_LOGIN])(session, CKU_USER, (unsigned char *)argv[2],
                                          strlen(argv[2]));
    if (rv != 0) {
        fprintf(stderr, "C_Login: 0x%lx\n", rv);
        return 8;
    }
    atexit(at_exit);
    fprintf(stderr, "main: logged in, leaving the session to atexit\n");
    return 0;
}
