//! SHA-1 (FIPS 180-4) as a `const fn`: what names a Lua script in Redis (`EVALSHA <sha1>`), so
//! that a [`Script`](crate::script::Script)'s digest is computed when the program is compiled.
//! SHA-1 is broken for collisions; Redis uses it only to name its cached scripts, and so do we.
//! Not for anything that needs a secure hash (the request fingerprints use [`crate::sha256`]).

const H0: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];

/// The SHA-1 digest of `data`; usable in a constant.
pub const fn digest(data: &[u8]) -> [u8; 20] {
    let mut state = H0;
    let mut block = [0u8; 64];
    let mut i = 0;
    // Every whole block of the data.
    while i + 64 <= data.len() {
        let mut j = 0;
        while j < 64 {
            block[j] = data[i + j];
            j += 1;
        }
        compress(&mut state, &block);
        i += 64;
    }
    // The rest, the 0x80 marker, zeros, and the length in bits (one or two more blocks).
    let rest = data.len() - i;
    let mut last = [0u8; 128];
    let mut j = 0;
    while j < rest {
        last[j] = data[i + j];
        j += 1;
    }
    last[rest] = 0x80;
    let blocks = if rest < 56 { 1 } else { 2 };
    let bits = (data.len() as u64).wrapping_mul(8).to_be_bytes();
    let mut k = 0;
    while k < 8 {
        last[blocks * 64 - 8 + k] = bits[k];
        k += 1;
    }
    let mut b = 0;
    while b < blocks {
        let mut j = 0;
        while j < 64 {
            block[j] = last[b * 64 + j];
            j += 1;
        }
        compress(&mut state, &block);
        b += 1;
    }
    let mut out = [0u8; 20];
    let mut w = 0;
    while w < 5 {
        let bytes = state[w].to_be_bytes();
        let mut k = 0;
        while k < 4 {
            out[w * 4 + k] = bytes[k];
            k += 1;
        }
        w += 1;
    }
    out
}

const fn compress(state: &mut [u32; 5], block: &[u8; 64]) {
    let mut w = [0u32; 80];
    let mut t = 0;
    while t < 16 {
        w[t] = u32::from_be_bytes([block[4 * t], block[4 * t + 1], block[4 * t + 2], block[4 * t + 3]]);
        t += 1;
    }
    while t < 80 {
        w[t] = (w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16]).rotate_left(1);
        t += 1;
    }
    let [mut a, mut b, mut c, mut d, mut e] = *state;
    let mut t = 0;
    while t < 80 {
        let (f, k) = match t / 20 {
            0 => ((b & c) | (!b & d), 0x5A82_7999),
            1 => (b ^ c ^ d, 0x6ED9_EBA1),
            2 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
            _ => (b ^ c ^ d, 0xCA62_C1D6),
        };
        let temp = a.rotate_left(5).wrapping_add(f).wrapping_add(e).wrapping_add(k).wrapping_add(w[t]);
        e = d;
        d = c;
        c = b.rotate_left(30);
        b = a;
        a = temp;
        t += 1;
    }
    state[0] = state[0].wrapping_add(a);
    state[1] = state[1].wrapping_add(b);
    state[2] = state[2].wrapping_add(c);
    state[3] = state[3].wrapping_add(d);
    state[4] = state[4].wrapping_add(e);
}

/// A digest as 40 lower-case hex digits (ASCII), as Redis writes a script's SHA-1.
pub const fn hex(digest: &[u8; 20]) -> [u8; 40] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 40];
    let mut i = 0;
    while i < 20 {
        out[2 * i] = DIGITS[(digest[i] >> 4) as usize];
        out[2 * i + 1] = DIGITS[(digest[i] & 0x0f) as usize];
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha1_hex(data: &[u8]) -> String {
        String::from_utf8(hex(&digest(data)).to_vec()).expect("hex is ASCII")
    }

    #[test]
    fn known_vectors() {
        // FIPS 180-4 / RFC 3174 examples, the empty message and a million 'a's.
        assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            sha1_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        assert_eq!(
            sha1_hex(
                b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"
            ),
            "a49b2446a02c645bf419f995b67091253a04a259"
        );
        assert_eq!(sha1_hex(&vec![b'a'; 1_000_000]), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
        assert_eq!(
            sha1_hex(b"The quick brown fox jumps over the lazy dog"),
            "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"
        );
    }

    #[test]
    fn every_padding_boundary() {
        // Lengths around the split between one and two final blocks, against `sha1sum` of the
        // same bytes (b'x' repeated).
        let expected = [
            (1, "11f6ad8ec52a2984abaafd7c3b516503785c2072"),
            (55, "cef734ba81a024479e09eb5a75b6ddae62e6abf1"),
            (56, "901305367c259952f4e7af8323f480d59f81335b"),
            (57, "025ecbd5d70f8fb3c5457cd96bab13fda305dc59"),
            (63, "0ddc4e0cccd9a12850deb5abb0853a4425559fec"),
            (64, "bb2fa3ee7afb9f54c6dfb5d021f14b1ffe40c163"),
            (65, "78c741ddc482e4cdf8c474a0876347a0905b6233"),
            (119, "4300320394f7ee239bcdce7d3b8bcee173a0cd5c"),
            (120, "ceb2821639c4b6dcb10bce0e522ca2e608ce056d"),
            (128, "150fa3fbdc899bd0b8f95a9fb6027f564d953762"),
        ];
        for (len, sha) in expected {
            assert_eq!(sha1_hex(&vec![b'x'; len]), sha, "{len} bytes");
        }
    }

    #[test]
    fn computed_at_compile_time() {
        const ABC: [u8; 40] = hex(&digest(b"abc"));
        assert_eq!(&ABC, b"a9993e364706816aba3e25717850c26c9cd0d89d");
    }
}
