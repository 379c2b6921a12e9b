# The OBD-II mode 01 PID table: the one place where names, units, sizes and scaling live. Data only,
# and not imported on the device: obdii.obd (entry, obdii/pidrow.py) reads a PID's row from this
# module's file (.py or .mpy: the rows are stored there verbatim) the first time that PID is used,
# with core/rows.py (200 bytes at a time), and caches it parsed, so only the rows of the configured
# PIDs stay in RAM (as small tuples). Without the file (a frozen image) core/rows.py imports the
# module for the lookup (its TABLE) and drops it again.
#
# One line per PID:  PID name unit bytes formula mul/div offset
#   formula picks the reply bytes that make the raw integer (A is the first data byte
#   after "41 <pid>", B the second, ...); then  value = raw * mul / div + offset
#   (an int when div is 1, else a float).
# Formulas are SAE J1979 / ISO 15031-5 ones, fractions kept exact (100/255, 8/65536).
# Bitmap ("supported PIDs") and bit-field PIDs (01, 03, 12, 13, 1C, 1D, 1E) are not
# scaled values and are not listed; decode() returns their raw integer.
FORMULAS = ("A", "A*256+B", "C*256+D", "A*2^24+B*2^16+C*256+D")  # a row's `bytes` covers what its formula reads (tests)
# (obdii.obd's parser knows them in this order: formula_index; obdii.obd.decode computes them)

# One string per 32 PIDs (TABLE[pid >> 5]; a PID above 0xFF: not in the table). Each row starts a line
# with its two hex digits and a space: the key obdii.obd searches the file for.
TABLE = (
    """
04 engine_load               %     1 A       100/255   0
05 coolant_temp              C     1 A       1/1       -40
06 short_fuel_trim_1         %     1 A       100/128   -100
07 long_fuel_trim_1          %     1 A       100/128   -100
08 short_fuel_trim_2         %     1 A       100/128   -100
09 long_fuel_trim_2          %     1 A       100/128   -100
0A fuel_pressure             kPa   1 A       3/1       0
0B intake_map                kPa   1 A       1/1       0
0C rpm                       rpm   2 A*256+B 1/4       0
0D speed                     km/h  1 A       1/1       0
0E timing_advance            deg   1 A       1/2       -64
0F intake_temp               C     1 A       1/1       -40
10 maf                       g/s   2 A*256+B 1/100     0
11 throttle                  %     1 A       100/255   0
14 o2_b1s1_voltage           V     2 A       1/200     0
15 o2_b1s2_voltage           V     2 A       1/200     0
16 o2_b1s3_voltage           V     2 A       1/200     0
17 o2_b1s4_voltage           V     2 A       1/200     0
18 o2_b2s1_voltage           V     2 A       1/200     0
19 o2_b2s2_voltage           V     2 A       1/200     0
1A o2_b2s3_voltage           V     2 A       1/200     0
1B o2_b2s4_voltage           V     2 A       1/200     0
1F run_time                  s     2 A*256+B 1/1       0
""",  # 00-1F
    """
21 distance_mil              km    2 A*256+B 1/1       0
22 fuel_rail_pressure_vac    kPa   2 A*256+B 79/1000   0
23 fuel_rail_pressure_direct kPa   2 A*256+B 10/1      0
24 o2_s1_wr_voltage          V     4 C*256+D 8/65536   0
25 o2_s2_wr_voltage          V     4 C*256+D 8/65536   0
26 o2_s3_wr_voltage          V     4 C*256+D 8/65536   0
27 o2_s4_wr_voltage          V     4 C*256+D 8/65536   0
28 o2_s5_wr_voltage          V     4 C*256+D 8/65536   0
29 o2_s6_wr_voltage          V     4 C*256+D 8/65536   0
2A o2_s7_wr_voltage          V     4 C*256+D 8/65536   0
2B o2_s8_wr_voltage          V     4 C*256+D 8/65536   0
2C commanded_egr             %     1 A       100/255   0
2D egr_error                 %     1 A       100/128   -100
2E evap_purge                %     1 A       100/255   0
2F fuel_level                %     1 A       100/255   0
30 warmups_since_clear       count 1 A       1/1       0
31 distance_since_clear      km    2 A*256+B 1/1       0
33 baro_pressure             kPa   1 A       1/1       0
34 o2_s1_wr_current          mA    4 C*256+D 1/256     -128
35 o2_s2_wr_current          mA    4 C*256+D 1/256     -128
36 o2_s3_wr_current          mA    4 C*256+D 1/256     -128
37 o2_s4_wr_current          mA    4 C*256+D 1/256     -128
38 o2_s5_wr_current          mA    4 C*256+D 1/256     -128
39 o2_s6_wr_current          mA    4 C*256+D 1/256     -128
3A o2_s7_wr_current          mA    4 C*256+D 1/256     -128
3B o2_s8_wr_current          mA    4 C*256+D 1/256     -128
3C catalyst_temp_b1s1        C     2 A*256+B 1/10      -40
3D catalyst_temp_b2s1        C     2 A*256+B 1/10      -40
3E catalyst_temp_b1s2        C     2 A*256+B 1/10      -40
3F catalyst_temp_b2s2        C     2 A*256+B 1/10      -40
""",  # 20-3F
    """
42 module_voltage            V     2 A*256+B 1/1000    0
43 absolute_load             %     2 A*256+B 100/255   0
44 equiv_ratio               ratio 2 A*256+B 2/65536   0
45 relative_throttle         %     1 A       100/255   0
46 ambient_temp              C     1 A       1/1       -40
47 throttle_b                %     1 A       100/255   0
48 throttle_c                %     1 A       100/255   0
49 accel_pedal_d             %     1 A       100/255   0
4A accel_pedal_e             %     1 A       100/255   0
4B accel_pedal_f             %     1 A       100/255   0
4C throttle_actuator         %     1 A       100/255   0
4D run_time_mil              min   2 A*256+B 1/1       0
4E time_since_clear          min   2 A*256+B 1/1       0
52 ethanol                   %     1 A       100/255   0
53 evap_pressure_abs         kPa   2 A*256+B 1/200     0
55 short_o2_trim_b1          %     2 A       100/128   -100
56 long_o2_trim_b1           %     2 A       100/128   -100
57 short_o2_trim_b2          %     2 A       100/128   -100
58 long_o2_trim_b2           %     2 A       100/128   -100
59 fuel_rail_pressure_abs    kPa   2 A*256+B 10/1      0
5A relative_accel_pedal      %     1 A       100/255   0
5B hybrid_battery            %     1 A       100/255   0
5C oil_temp                  C     1 A       1/1       -40
5D injection_timing          deg   2 A*256+B 1/128     -210
5E fuel_rate                 L/h   2 A*256+B 1/20      0
""",  # 40-5F
    """
61 demand_torque             %     1 A       1/1       -125
62 actual_torque             %     1 A       1/1       -125
63 reference_torque          Nm    2 A*256+B 1/1       0
""",  # 60-7F
    """
""",  # 80-9F
    """
A6 odometer                  km    4 A*2^24+B*2^16+C*256+D 1/10      0
""",  # A0-BF
    """
""",  # C0-DF
    """
""",  # E0-FF
)


def row(pid):
    """The text of `pid`'s row ("0C rpm  rpm  2 A*256+B 1/4  0"), or None: for tools and tests. obdii.obd reads
    the rows from this module's file instead (core/rows.py: they are stored verbatim in its .py and its .mpy),
    and only its TABLE when there is no such file (a frozen image); it parses and caches them."""
    if not 0 <= pid < 256:
        return None
    t = TABLE[pid >> 5]
    i = t.find("\n%02X " % pid)
    if i < 0:
        return None
    return t[i + 1 : t.find("\n", i + 1)]
