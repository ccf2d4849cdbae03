/* digest_test.c - SHA-256 against the FIPS 180-2 test vectors. */
#include "reports/digest.h"

#include "tests/harness.h"

EP_TEST(fips_vectors)
{
	char hex[EP_SHA256_HEX];
	ep_sha256_of("abc", 3, hex);
	EP_ASSERT_STR_EQ(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	ep_sha256_of("", 0, hex);
	EP_ASSERT_STR_EQ(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	struct ep_sha256 h;
	ep_sha256_init(&h);
	ep_sha256_update(&h, "abcdbcdecdefdefgefghfghighijhijkijkl", 36);
	ep_sha256_update(&h, "jklmklmnlmnomnopnopq", 20);
	ep_sha256_hex(&h, hex);
	EP_ASSERT_STR_EQ(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

EP_TEST_MAIN()
