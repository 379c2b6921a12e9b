# net.publisher.backoff_ms: the one reconnect-delay rule of every transport.
from net.publisher import backoff_ms


def test_doubles_with_jitter_in_the_upper_half_and_caps():
    lo = [backoff_ms(a, 1000, 60000, lambda n: 0) for a in range(1, 9)]
    hi = [backoff_ms(a, 1000, 60000, lambda n: n - 1) for a in range(1, 9)]
    assert lo == [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]
    assert hi == [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]


def test_huge_attempt_counts_stay_bounded():
    assert backoff_ms(10**6, 1000, 60000, lambda n: n - 1) == 60000
