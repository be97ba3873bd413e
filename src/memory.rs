//! Process-wide allocator settings for builds.
/// Call first thing in `main`. Every sample allocates and frees pixel buffers of the same few
/// megabytes. glibc's defaults hand such buffers back to the kernel on free (mmap, or trimming the
/// arena's top), so the next sample page-faults them in again and the kernel zeroes them: 14% of a
/// build's time on one core, and a third of its system time. Freed memory is kept in the process
/// instead, in one arena shared by all threads so that it stays flat as the dataset grows. A user's own `GLIBC_TUNABLES`
/// or `MALLOC_*` settings win.
pub fn keep_freed_pixel_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let user_tuned = std::env::vars_os().any(|(name, _)| {
            let name = name.to_string_lossy();
            name == "GLIBC_TUNABLES" || name.starts_with("MALLOC_")
        });
        if user_tuned {
            return;
        }
        // SAFETY: mallopt only changes allocator thresholds; the caller runs this at start-up,
        // before any thread exists.
        unsafe {
            // The largest threshold glibc accepts: buffers up to 32 MiB come from the arenas.
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
            // One arena for all threads: a build allocates a handful of large buffers per sample,
            // so threads hardly contend for it, and a buffer freed by the writer is reused by any
            // worker instead of stranding in the arena of the thread that made it (with one
            // arena per thread, peak memory crept up by a third over 3,000 pairs).
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

/// Buffers of pixels, label ids and padding flags kept from one sample for the next. A buffer
/// fresh from the allocator is zeroed there (calloc), and then every value is overwritten by the
/// decoder, resize, flip or warp that asked for it: a few percent of a JPEG build went to zeroing
/// (the label warp's ids and flags alone 1.9%). Buffers come back when a stage replaces an image
/// or label, or a sink has written them. Shared by all threads (a buffer freed by the writer
/// serves a worker), one pool per element type, each bounded: at most `POOLED` buffers and
/// `POOLED_BYTES` (the oldest let go first), so memory still depends on threads and shard size
/// alone: 16 to 24 MiB more peak RSS than without them, on the e2e sets.
pub mod pixel_buffers {
    use std::sync::Mutex;

    const POOLED: usize = 8;
    const POOLED_BYTES: usize = 64 << 20;
    /// Smaller buffers are cheap to zero; pooling them would only hold memory.
    const SMALLEST: usize = 64 << 10;

    /// Buffers of one element type. Every bit pattern a pooled buffer can hold is a value of
    /// its type (only buffers of that type are given to it), so stale contents are safe to read,
    /// merely meaningless.
    pub struct Pool<T>(Mutex<Vec<Vec<T>>>);

    /// An element type with a pool of its own.
    pub trait Pooled: Copy + Default + Sized + 'static {
        fn pool() -> &'static Pool<Self>;
    }

    macro_rules! pools {
        ($($t:ty => $name:ident),*) => {$(
            static $name: Pool<$t> = Pool(Mutex::new(Vec::new()));
            impl Pooled for $t {
                fn pool() -> &'static Pool<$t> {
                    &$name
                }
            }
        )*};
    }
    pools!(u8 => BYTES, u16 => WORDS, f32 => FLOATS, bool => FLAGS);

    fn bytes<T>(buffer: &Vec<T>) -> usize {
        buffer.capacity() * std::mem::size_of::<T>()
    }

    /// A buffer of `len` values whose contents are whatever an earlier image or label left: only
    /// for a writer that sets every value. A pooled buffer of `len` to `2 * len` values is reused
    /// (a larger one would be wasted on a small image), else a new one is allocated.
    pub fn take<T: Pooled>(len: usize) -> Vec<T> {
        let reused = (len * std::mem::size_of::<T>() >= SMALLEST)
            .then(|| {
                let mut pool = T::pool().0.lock().unwrap_or_else(|e| e.into_inner());
                let fits = |b: &Vec<T>| (len..=len.saturating_mul(2)).contains(&b.capacity());
                let at = (0..pool.len())
                    .filter(|&i| fits(&pool[i]))
                    .min_by_key(|&i| pool[i].capacity())?;
                Some(pool.remove(at))
            })
            .flatten();
        match reused {
            Some(mut buffer) => {
                // shorter: the old values stay; longer: only the added ones are zeroed
                buffer.resize(len, T::default());
                buffer
            }
            None => vec![T::default(); len],
        }
    }

    /// Keeps `buffer` for a later `take`; a full pool lets its oldest buffers go first, so the
    /// sizes in use now are the ones kept.
    pub fn give<T: Pooled>(buffer: Vec<T>) {
        let size = bytes(&buffer);
        if !(SMALLEST..=POOLED_BYTES).contains(&size) {
            return;
        }
        let mut pool = T::pool().0.lock().unwrap_or_else(|e| e.into_inner());
        let mut held: usize = pool.iter().map(bytes).sum();
        while pool.len() >= POOLED || held + size > POOLED_BYTES {
            held -= bytes(&pool.remove(0));
        }
        pool.push(buffer);
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        // sizes far from any image another test decodes, since all tests share the pool

        #[test]
        fn a_given_buffer_is_taken_again_and_a_much_smaller_request_is_not_served_from_it() {
            let len = (20 << 20) + 7;
            let buffer = vec![7u8; len];
            let at = buffer.as_ptr();
            give(buffer);
            let small = take(len / 8);
            assert_ne!(small.as_ptr(), at, "an eighth of it is a new buffer");
            let back = take(len);
            assert_eq!(back.as_ptr(), at, "the given buffer is reused");
            assert_eq!(back.len(), len);
        }

        #[test]
        fn each_element_type_has_its_own_pool() {
            let len = (3 << 20) + 11;
            let ids = vec![9u16; len];
            let at = ids.as_ptr() as usize;
            give(ids);
            let bytes: Vec<u8> = take(2 * len);
            assert_ne!(
                bytes.as_ptr() as usize,
                at,
                "a u16 buffer never serves u8 values"
            );
            let flags: Vec<bool> = take(len);
            assert_ne!(flags.as_ptr() as usize, at, "nor flags");
            let back: Vec<u16> = take(len);
            assert_eq!(back.as_ptr() as usize, at, "it serves the next u16 request");
        }

        #[test]
        fn a_longer_request_zeroes_only_what_it_adds() {
            let mut buffer = Vec::with_capacity(12 << 20);
            buffer.resize(8 << 20, 5u8);
            let at = buffer.as_ptr();
            give(buffer);
            let grown = take(10 << 20);
            assert_eq!(grown.as_ptr(), at);
            assert!(grown[..8 << 20].iter().all(|&v| v == 5));
            assert!(grown[8 << 20..].iter().all(|&v| v == 0));
        }
    }
}
