/** The HS256 secret the test runs sign and verify with (never used outside tests). */
export const TEST_JWT_SECRET = "test-only-secret-0123456789abcdef-0123456789";
