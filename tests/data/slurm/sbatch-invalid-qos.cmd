sbatch --parsable
