sinfo --noheader --Node -O 'PartitionName:|,StateCompact:|,CPUsState:|,Gres:|,GresUsed:|'
