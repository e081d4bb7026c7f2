#ifndef TOKENBROKER_CLIBCRYPTO_SHIM_H
#define TOKENBROKER_CLIBCRYPTO_SHIM_H

// OpenSSL's libcrypto, for what swift-crypto lacks: DES-EDE3-CBC (the MSNP15-18 SSO proof),
// and raw RSA and big numbers (SkyLogin).
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/bn.h>
#include <openssl/rsa.h>
#include <openssl/err.h>

#endif
