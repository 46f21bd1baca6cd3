package dev.gradscope.backend.cpu;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.function.IntConsumer;

/**
 * The CPU backend's threads: the caller plus one helper per further core, shared by every op and the
 * GEMM. A training step is a chain of ops of 0.05-2 ms each; a helper that went to sleep after the last
 * one takes longer than that to be woken on a virtual machine (measured on the 2-core development
 * machine: two 50 us halves through the common fork-join pool took as long as running both on the
 * caller). So after its last part a helper spins for {@link #SPIN_NANOS} before it parks, as OpenMP
 * runtimes do, and the next op finds it awake. Parts are handed out one at a time to whichever thread
 * asks first; which thread runs a part never changes what the part computes.
 */
final class CpuWorkers {
    /** How long an idle helper keeps looking for work before it parks. */
    static final long SPIN_NANOS = 500_000;

    private static final int HELPERS = Math.max(0, Runtime.getRuntime().availableProcessors() - 1);

    /** The job being run, or null. One job at a time: a second caller meanwhile runs its parts itself. */
    private static final AtomicReference<Job> CURRENT = new AtomicReference<>();

    private static final Helper[] THREADS = startHelpers();

    private CpuWorkers() {
    }

    /** Threads that run parts: the caller and the helpers. */
    static int threads() {
        return HELPERS + 1;
    }

    /**
     * Runs {@code body} for every part in [0, parts), the caller taking parts too, and returns when all
     * are done. The first exception a part throws is rethrown after every part has finished (the others
     * may still be writing into shared arrays until then).
     */
    static void run(int parts, IntConsumer body) {
        if (parts <= 1 || HELPERS == 0) {
            for (int part = 0; part < parts; part++) {
                body.accept(part);
            }
            return;
        }
        Job job = new Job(parts, body);
        if (!CURRENT.compareAndSet(null, job)) {
            job.work(); // another thread's job holds the helpers (or this is a nested call): go alone
            job.rethrow();
            return;
        }
        try {
            for (Helper helper : THREADS) {
                if (helper.parked) {
                    LockSupport.unpark(helper.thread);
                }
            }
            job.work();
            while (job.done.get() < parts) {
                Thread.onSpinWait();
            }
        } finally {
            CURRENT.set(null);
        }
        job.rethrow();
    }

    private static Helper[] startHelpers() {
        Helper[] helpers = new Helper[HELPERS];
        for (int i = 0; i < HELPERS; i++) {
            helpers[i] = new Helper();
            Thread thread = new Thread(helpers[i]::loop, "gradscope-cpu-" + (i + 1));
            thread.setDaemon(true);
            helpers[i].thread = thread;
            thread.start();
        }
        return helpers;
    }

    /** One call of {@link #run}: parts handed out by a counter, finished ones counted. */
    private static final class Job {
        final int parts;
        final IntConsumer body;
        final AtomicInteger next = new AtomicInteger();
        final AtomicInteger done = new AtomicInteger();
        /** The first failure; later ones are added to it as suppressed. */
        final AtomicReference<Throwable> failure = new AtomicReference<>();

        Job(int parts, IntConsumer body) {
            this.parts = parts;
            this.body = body;
        }

        boolean hasWork() {
            return next.get() < parts;
        }

        /** Runs parts until none is left to take. */
        void work() {
            for (int part = next.getAndIncrement(); part < parts; part = next.getAndIncrement()) {
                try {
                    body.accept(part);
                } catch (Throwable e) { // kept for the caller: a helper must not die, nor the count stop short
                    if (!failure.compareAndSet(null, e)) {
                        failure.get().addSuppressed(e);
                    }
                } finally {
                    done.incrementAndGet();
                }
            }
        }

        void rethrow() {
            Throwable f = failure.get();
            if (f instanceof RuntimeException runtime) {
                throw runtime;
            }
            if (f instanceof Error error) {
                throw error;
            }
            if (f != null) {
                throw new IllegalStateException("a parallel part failed", f); // a checked exception, thrown sneakily
            }
        }
    }

    private static final class Helper {
        Thread thread;
        /** Set before the helper parks; {@link #run} unparks only helpers that may be parked. */
        volatile boolean parked;

        void loop() {
            long idleSince = System.nanoTime();
            while (true) {
                Job job = CURRENT.get();
                if (job != null && job.hasWork()) {
                    job.work();
                    idleSince = System.nanoTime();
                } else if (System.nanoTime() - idleSince < SPIN_NANOS) {
                    Thread.onSpinWait();
                } else {
                    // Announce the park, then look once more: a caller that published its job before
                    // reading the flag is seen here; one that publishes after it sees the flag and unparks.
                    parked = true;
                    job = CURRENT.get();
                    if (job == null || !job.hasWork()) {
                        LockSupport.park(this);
                    }
                    parked = false;
                    idleSince = System.nanoTime();
                }
            }
        }
    }
}
