"""Real genomic data (FASTA, BED/narrowPeak, bigWig) to benchmark_rc HDF5 datasets."""
